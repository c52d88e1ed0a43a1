"""Regression gate: baseline file handling, the check rule, and the CLI end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import EvaluateError
from pipeline.evaluate import gate
from pipeline.schema import TrialRecord

WORDS = {"asthma": "Condition", "aspirin": "Drug", "biopsy": "Procedure", "creatinine": "Measurement"}


def report(f1: dict[str, float], interval: dict[str, list[float]] | None = None) -> dict:
    return {
        "documents_scored": 4,
        "metrics": {name: {"precision": v, "recall": v, "f1": v, "tp": 1, "fp": 0, "fn": 0} for name, v in f1.items()},
        "intervals": {name: {"f1": span} for name, span in (interval or {}).items()},
    }


def test_tolerance_is_half_the_interval_clamped():
    assert gate.derived_tolerance([0.70, 0.76]) == pytest.approx(0.03)
    assert gate.derived_tolerance([1.0, 1.0]) == gate.TOLERANCE_FLOOR
    assert gate.derived_tolerance([0.2, 0.9]) == gate.TOLERANCE_CAP
    assert gate.derived_tolerance(None) == gate.TOLERANCE_FLOOR


def test_check_reports_each_metric_that_fell_past_its_tolerance():
    base = {"rules": gate.baseline_section(
        report({"entities.relaxed": 0.76, "values": 0.5, "negation": 0.9},
               {"entities.relaxed": [0.72, 0.76], "values": [0.4, 0.6], "negation": [0.88, 0.92]}))}
    assert gate.check(base, "rules", report({"entities.relaxed": 0.741, "values": 0.46, "negation": 0.95})) == []
    failures = gate.check(base, "rules", report({"entities.relaxed": 0.712, "values": 0.40, "negation": 0.9}))
    assert failures == [
        "entities.relaxed f1 0.712 < baseline 0.760 - tol 0.020 (-0.048)",
        "values f1 0.400 < baseline 0.500 - tol 0.050 (-0.100)",
    ]


def test_check_uses_override_and_flags_vanished_metrics():
    base = {"local": {"metrics": {"temporal": {"value": 0.6, "tolerance": 0.05, "tolerance_override": 0.2},
                                  "negation": {"value": 0.5, "tolerance": 0.05}}}}
    assert gate.check(base, "local", report({"temporal": 0.45})) == [
        "negation is tracked by the baseline but missing from this run"]


def test_check_without_section_is_an_input_error():
    with pytest.raises(EvaluateError, match=r"^evals/baseline\.json: no section 'openai'; create it with"):
        gate.check({"rules": {"metrics": {}}}, "openai", report({}), where="evals/baseline.json")


def test_update_rewrites_only_its_section_and_keeps_overrides(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({
        "local": {"documents": 1, "metrics": {"values": {"value": 0.3, "tolerance": 0.05}}},
        "rules": {"documents": 1, "metrics": {"values": {"value": 0.1, "tolerance": 0.05, "tolerance_override": 0.1}}},
    }))
    gate.update_baseline(path, "rules", report({"values": 0.8}, {"values": [0.7, 0.9]}))
    data = json.loads(path.read_text())
    assert data["local"]["metrics"]["values"] == {"value": 0.3, "tolerance": 0.05}
    assert data["rules"] == {"documents": 4, "metrics": {
        "values": {"value": 0.8, "tolerance": 0.05, "tolerance_override": 0.1}}}
    assert [p.name for p in tmp_path.iterdir()] == ["baseline.json"]


def prompted(f1: dict[str, float]) -> dict:
    """A report of a backend that uses a prompt."""
    return {**report(f1), "run": {"backend": "openai", "model": "m", "prompt": {"name": "p", "version": "p",
                                                                                 "hash": "abc"}}}


def test_metric_groups_split_extraction_from_segmentation_and_metadata():
    assert [gate.metric_group(n) for n in ("entities.strict.Drug", "values", "negation", "temporal")] == [
        "extraction"] * 4
    assert [gate.metric_group(n) for n in ("criteria.segmentation", "metadata.phases")] == ["pipeline"] * 2


def test_keys_name_backend_model_and_prompt():
    assert gate.baseline_key({"backend": "rules", "model": "rules-1", "prompt": None}) == "rules"
    assert gate.baseline_key(prompted({})["run"]) == "openai/m/p"
    assert gate.baseline_key(prompted({})["run"], "seeds") == "seeds:openai/m/p"


def test_a_prompted_section_gates_only_extraction_and_records_its_run():
    section = gate.baseline_section(prompted({"entities.relaxed": 0.5, "criteria.segmentation": 1.0,
                                              "metadata.phases": 1.0}), recording="r.jsonl")
    assert list(section["metrics"]) == ["entities.relaxed"]
    assert section["run"]["prompt"]["hash"] == "abc" and section["recording"] == "r.jsonl"
    assert list(gate.baseline_section(report({"entities.relaxed": 0.5, "metadata.phases": 1.0}))["metrics"]) == [
        "entities.relaxed", "metadata.phases"]


def test_an_old_key_finds_its_migrated_section_and_updates_it(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"seeds:openai/m/p": {"aliases": ["local:seeds"], "documents": 1, "metrics": {
        "values": {"value": 0.9, "tolerance": 0.05, "tolerance_override": 0.01}}}}))
    assert gate.check(gate.load_baseline(path), "local:seeds", prompted({"values": 0.8})) == [
        "values f1 0.800 < baseline 0.900 - tol 0.010 (-0.100)"]
    assert gate.update_baseline(path, "local:seeds", prompted({"values": 0.8})) == "seeds:openai/m/p"
    data = json.loads(path.read_text())
    assert list(data) == ["seeds:openai/m/p"]
    assert data["seeds:openai/m/p"]["aliases"] == ["local:seeds"]
    assert data["seeds:openai/m/p"]["metrics"]["values"]["tolerance_override"] == 0.01


def test_offline_misses_fail_with_one_line_naming_the_cause(tmp_path):
    baseline = {"openai/m/p": gate.baseline_section(prompted({"values": 0.9}), recording="rec.jsonl")}
    missed = {**prompted({"values": 0.0}), "offline_misses": ["d1", "d2"]}
    outcome = gate.run_gate(baseline, "openai/m/p", missed, "b.json", None, "trialstruct eval --record rec.jsonl")
    assert outcome["verdict"] == "incomplete" and outcome["regressions"] == []
    assert outcome["lines"] == ["recording incomplete: 2 document(s) need model calls that are not in rec.jsonl "
                                "(d1, d2); the prompt is unchanged, so settings or code changed the requests: run "
                                "trialstruct eval --record rec.jsonl"]
    missed["run"]["prompt"]["hash"] = "edited"
    outcome = gate.run_gate(baseline, "openai/m/p", missed, "b.json", None, "trialstruct eval --record rec.jsonl")
    assert outcome["verdict"] == "stale"
    assert outcome["lines"] == ["prompt changed, recording stale: run trialstruct eval --record rec.jsonl"]


def test_bad_baseline_file_is_named(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text("{not json")
    with pytest.raises(EvaluateError, match=r"baseline\.json: not valid JSON"):
        gate.load_baseline(path)


# --- the CLI, as CI runs it ---------------------------------------------------------------


def make_record(doc: int, keep: int = len(WORDS)) -> TrialRecord:
    lines = [f"- history of {word} in cohort {doc}" for word in WORDS]
    text = "Inclusion Criteria:\n" + "\n".join(lines) + "\n"
    criteria = []
    for n, (line, (word, type_)) in enumerate(zip(lines, WORDS.items(), strict=True), 1):
        start = text.index(line) + 2
        word_start = text.index(word, start)
        entities = [{"id": f"inc-{n}.e1", "type": type_, "text": word, "start": word_start,
                     "end": word_start + len(word)}] if n <= keep else []
        criteria.append({"id": f"inc-{n}", "kind": "inclusion", "text": line[2:], "start": start,
                         "end": start + len(line) - 2, "entities": entities})
    return TrialRecord.model_validate({
        "doc_id": f"doc-{doc}", "source": {"path": "x.txt", "format": "text", "sha256": "0" * 64},
        "source_text": text, "criteria": criteria, "provenance": {"backend": "rules"}})


def run_eval(*args: str | Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from pipeline.cli import app; app()", "eval", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture
def gold_and_runs(tmp_path: Path) -> dict[str, Path]:
    gold = tmp_path / "gold"
    gold.mkdir()
    for doc in range(8):
        (gold / f"doc-{doc}.json").write_text(make_record(doc).model_dump_json())
    runs = {"gold": gold, "baseline": tmp_path / "baseline.json"}
    for name, keep in (("good", len(WORDS)), ("degraded", 2)):
        runs[name] = tmp_path / f"{name}.jsonl"
        runs[name].write_text("".join(make_record(d, keep).model_dump_json() + "\n" for d in range(8)))
    return runs


def test_gate_passes_on_its_own_run_and_fails_on_a_degraded_one(gold_and_runs, tmp_path):
    g = gold_and_runs
    created = run_eval("--gold", g["gold"], "--pred", g["good"], "--baseline", g["baseline"], "--update-baseline",
                       "--json", tmp_path / "r.json", "--markdown", tmp_path / "r.md", "--resamples", "100")
    assert created.returncode == 0, created.stderr
    assert json.loads(g["baseline"].read_text())["rules"]["metrics"]["entities.relaxed"]["value"] == 1.0
    assert json.loads((tmp_path / "r.json").read_text())["metrics"]["entities.strict"]["tp"] == 32
    assert "| entities.relaxed | 1.000 | 1.000 | 1.000 |" in (tmp_path / "r.md").read_text()

    passed = run_eval("--gold", g["gold"], "--pred", g["good"], "--baseline", g["baseline"], "--check")
    assert passed.returncode == 0, passed.stderr
    assert "gate passed" in passed.stdout

    failed = run_eval("--gold", g["gold"], "--pred", g["degraded"], "--baseline", g["baseline"], "--check",
                      "--markdown", tmp_path / "failed.md")
    assert failed.returncode == 1
    assert "REGRESSION entities.relaxed f1 0.667 < baseline 1.000 - tol 0.005 (-0.333)" in failed.stderr
    assert "entities.relaxed.Procedure f1 0.000" in failed.stderr
    assert "entities.relaxed.Drug" not in failed.stderr
    head = (tmp_path / "failed.md").read_text().split("| metric |")[0]  # verdict and regressions before the table
    assert f"**Gate: FAILED** against `{g['baseline']}` section `rules`" in head
    assert "- REGRESSION entities.relaxed f1 0.667 < baseline 1.000 - tol 0.005 (-0.333)" in head
    assert head.count("- REGRESSION ") == failed.stderr.count("REGRESSION ")


def test_cli_input_errors_exit_2_with_one_line(gold_and_runs, tmp_path):
    g = gold_and_runs
    missing = run_eval("--gold", g["gold"], "--pred", tmp_path / "nope.jsonl")
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"error: {tmp_path / 'nope.jsonl'}: prediction file not found"
    both = run_eval("--gold", g["gold"], "--pred", g["good"], "--backend", "rules")
    assert both.returncode == 2
    assert "exactly one of --pred" in both.stderr
    no_baseline = run_eval("--gold", g["gold"], "--pred", g["good"], "--baseline", tmp_path / "none.json", "--check")
    assert no_baseline.returncode == 2
    assert f"{tmp_path / 'none.json'}: no section 'rules'" in no_baseline.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text(g["good"].read_text() + '{"doc_id": 3}\n')
    invalid = run_eval("--gold", g["gold"], "--pred", broken)
    assert invalid.returncode == 2
    assert f"{broken}:9: not a valid TrialRecord" in invalid.stderr
