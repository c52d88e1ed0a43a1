"""The `trialstruct run` command end to end, as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from pipeline.schema import TrialRecord
from tests.conftest import SEEDS


def trialstruct(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300, check=False)


def test_seeds_run_writes_valid_records_in_input_order(tmp_path: Path) -> None:
    result = trialstruct("run", str(SEEDS), "-o", str(tmp_path / "out"), "--backend", "none")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out" / "records.jsonl").read_text(encoding="utf-8").splitlines()
    records = [TrialRecord.model_validate_json(line) for line in lines]
    assert [r.doc_id for r in records] == sorted(p.stem for p in SEEDS.glob("*.txt"))
    assert (tmp_path / "out" / "errors.jsonl").read_text(encoding="utf-8") == ""
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["records"] == 5 and manifest["counts"]["errors"] == 0
    assert manifest["counts"]["criteria"] == sum(len(r.criteria) for r in records)
    assert manifest["backend"] == "none"


def test_bad_inputs_among_good_ones(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    shutil.copytree(SEEDS, inputs)
    (inputs / "binary.txt").write_bytes(b"\x7fELF\x00\x00\x00")
    (inputs / "empty.txt").write_bytes(b"")
    (inputs / "bad-utf8.txt").write_bytes(b"Inclusion Criteria:\n1. \xff\xfe")
    out = tmp_path / "out"
    result = trialstruct("run", str(inputs), "-o", str(out), "--backend", "none")
    assert result.returncode == 1
    records = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(records) == 5
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(Path(e["path"]).name for e in errors) == ["bad-utf8.txt", "binary.txt", "empty.txt"]
    assert all(e["stage"] == "ingest" and "\n" not in e["error"] for e in errors)
    for name in ("bad-utf8.txt", "binary.txt", "empty.txt"):
        assert name in result.stderr


def test_unknown_backend_is_a_clear_usage_error(tmp_path: Path) -> None:
    result = trialstruct("run", str(SEEDS), "-o", str(tmp_path / "out"), "--backend", "gpt-9")
    assert result.returncode == 2
    assert "unknown backend 'gpt-9'" in result.stderr
    assert not (tmp_path / "out").exists()


def test_schema_command_prints_json_schema() -> None:
    result = trialstruct("schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "TrialRecord"
    assert {"doc_id", "source", "source_text", "trial", "criteria", "provenance"} <= set(schema["properties"])


def test_the_summary_says_what_the_warnings_are_and_the_manifest_counts_them(tmp_path: Path) -> None:
    result = trialstruct("run", str(SEEDS), "-o", str(tmp_path / "out"), "--backend", "rules")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    records = [TrialRecord.model_validate_json(line)
               for line in (tmp_path / "out" / "records.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sum(manifest["warnings"].values()) == sum(len(r.warnings) for r in records) == manifest["counts"]["warnings"]
    assert manifest["warnings"]["no eligibility criteria found"] == 1
    assert "1 × no eligibility criteria found" in result.stderr
    assert "target enrollment N is a placeholder" in result.stderr


def test_limit_processes_the_first_documents_only(tmp_path: Path) -> None:
    result = trialstruct("run", str(SEEDS), "-o", str(tmp_path / "out"), "--backend", "none", "--limit", "2")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "out" / "records.jsonl").read_text(encoding="utf-8").splitlines()
    assert [TrialRecord.model_validate_json(line).doc_id for line in lines] == sorted(
        p.stem for p in SEEDS.glob("*.txt"))[:2]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["limit"] == 2 and manifest["counts"]["records"] == 2


def test_schema_is_self_describing() -> None:
    schema = json.loads(trialstruct("schema").stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].startswith("urn:trialstruct:trial-record:")


def test_standard_input_is_read_as_jsonl_json_or_a_page(tmp_path: Path) -> None:
    rows = "\n".join(json.dumps({"nct_id": f"NCT0000000{n}", "criteria": f"- age >= {n}"}) for n in (1, 2))
    page = sorted(SEEDS.glob("*.txt"))[0].read_text(encoding="utf-8")
    study = json.dumps({"protocolSection": {"identificationModule": {"nctId": "NCT00000009", "briefTitle": "T"},
                                            "eligibilityModule": {"eligibilityCriteria": "Inclusion Criteria:\n* x"}}})
    for name, stdin, ids in (("rows", rows, ["NCT00000001", "NCT00000002"]), ("page", page, ["<stdin>"]),
                             ("study", study, ["NCT00000009"])):
        out = tmp_path / name
        done = subprocess.run([sys.executable, "-m", "pipeline", "run", "-", "-o", str(out), "--backend", "none"],
                              input=stdin, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        lines = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
        assert [TrialRecord.model_validate_json(line).doc_id for line in lines] == ids
