"""The gold set: every record is a valid, exact TrialRecord, is rebuilt identically from its compact
file, and the set is as large as promised. The builder's own behaviour is tested on a seed page."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evals.tools.build_gold import build_all, main
from evals.tools.compact import CompactError, parse_compact
from pipeline.schema import TrialRecord

REPO = Path(__file__).resolve().parents[1]
GOLD_DIRS = [REPO / "evals" / "gold", REPO / "evals" / "gold_pass2"]
SHARED = REPO.parent / "shared" / "data"
SEED = "003_771e711b675f0f9f"


def gold_files() -> list[Path]:
    return sorted(p for d in GOLD_DIRS if d.is_dir() for p in d.glob("*.json"))


def load(path: Path) -> TrialRecord:
    return TrialRecord.model_validate_json(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", gold_files(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_gold_record_is_valid_and_exact(path: Path) -> None:
    record = load(path)
    assert record.doc_id == path.stem
    assert record.provenance.backend == "gold"
    assert record.annotation is not None and record.annotation.method and record.annotation.checked_by
    text = record.source_text
    for criterion in record.criteria:
        assert text[criterion.start : criterion.end] == criterion.text != ""
        for entity in criterion.entities:
            assert criterion.start <= entity.start < entity.end <= criterion.end, entity.id
            assert text[entity.start : entity.end] == entity.text
            assert entity.id.startswith(f"{criterion.id}.e")
            for part in (entity.value, entity.temporal):
                if part is not None:
                    assert criterion.start <= part.start < part.end <= criterion.end, entity.id
                    assert text[part.start : part.end] == part.text


def test_gold_has_the_seeds_and_no_stale_files() -> None:
    gold = {p.stem for p in (REPO / "evals" / "gold").glob("*.json")}
    sources = {p.stem for p in (REPO / "evals" / "gold_src").glob("*.txt")}
    assert gold == sources
    assert {p.stem for p in (REPO / "seeds").glob("*.txt")} <= gold


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent: gold sources cannot be re-ingested")
@pytest.mark.parametrize("src,out", [("gold_src", "gold"), ("gold_src_pass2", "gold_pass2")])
def test_gold_is_rebuilt_identically(src: str, out: str) -> None:
    if not (REPO / "evals" / src).is_dir():
        pytest.skip(f"evals/{src} does not exist yet")
    result = subprocess.run(
        [sys.executable, "-m", "evals.tools.build_gold", "--src", f"evals/{src}", "--out", f"evals/{out}", "--check"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_gold_set_size() -> None:
    records = [load(p) for p in (REPO / "evals" / "gold").glob("*.json")]
    criteria = sum(len(r.criteria) for r in records)
    entities = sum(len(r.entities()) for r in records)
    assert len(records) >= 30
    assert sum(r.source.path.startswith("../shared/data/") for r in records) >= 25
    assert criteria >= 500
    assert entities >= 1000


# --- the builder, on a seed page -------------------------------------------------------------------

HEADER = f"""doc: {SEED}
source: seeds/{SEED}.txt
annotator: test
method: test
date: 2026-11-21
"""


def write(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / f"{SEED}.txt"
    path.write_text(header + body, encoding="utf-8")
    return path


def build_one(tmp_path: Path, body: str) -> tuple[dict, list[str]]:
    write(tmp_path, body)
    built, errors, _ = build_all(tmp_path)
    return (json.loads(built[SEED]) if SEED in built else {}), errors


def entity(record: dict, cid: str, n: int = 1) -> dict:
    criterion = next(c for c in record["criteria"] if c["id"] == cid)
    return criterion["entities"][n - 1]


def test_builder_locates_entities_values_and_temporals(tmp_path: Path) -> None:
    record, errors = build_one(tmp_path, """
[exc-13]
Procedure | surgery@2 | temporal: at any time during participation in the study => during study - -
Procedure | surgery | temporal: within 8 weeks prior to Screening => before screening 0 56

[exc-3]
Measurement | HGB | value: ≤85g/L => <= - 85 g/L
""")
    assert errors == []
    text = record["source_text"]
    first, second = entity(record, "exc-13", 1), entity(record, "exc-13", 2)
    assert first["id"] == "exc-13.e1" and first["start"] < second["start"]
    assert first["temporal"]["max_days"] == 56 and first["temporal"]["anchor"] == "screening"
    # the second occurrence's temporal wraps a line: whitespace in the annotation matches the line break
    assert "\n" in second["temporal"]["text"] and second["temporal"]["direction"] == "during"
    hgb = entity(record, "exc-3")
    assert text[hgb["value"]["start"] : hgb["value"]["end"]] == "≤85g/L"
    assert (hgb["value"]["comparator"], hgb["value"]["low"], hgb["value"]["high"]) == ("<=", None, 85)
    assert record["annotation"] == {"method": "test", "checked_by": "test", "date": "2026-11-21", "notes": ""}


def test_builder_reports_missing_text_with_file_and_line(tmp_path: Path) -> None:
    record, errors = build_one(tmp_path, "\n[exc-6]\nDrug | lenalidomide\nDrug | pomalidomide\nDrug | thalidomide@2\n")
    assert record == {}
    path = tmp_path / f"{SEED}.txt"
    assert f"{path}:9: 'pomalidomide' not found" in errors[0]
    assert f"{path}:10: 'thalidomide' occurs 1 time(s), not @2" in errors[0]


def test_builder_rejects_unknown_criterion_and_bad_lines(tmp_path: Path) -> None:
    _, errors = build_one(tmp_path, "\n[exc-99]\nCondition | HIV\n")
    assert "no criterion 'exc-99'" in errors[0]
    with pytest.raises(CompactError, match=r":8: unknown entity type 'Disease'"):
        parse_compact(write(tmp_path, "\n[exc-8]\nDisease | HIV\n"))
    with pytest.raises(CompactError, match=r":8: comparator '=<'"):
        parse_compact(write(tmp_path, "\n[exc-8]\nCondition | HIV | value: HIV => =< 1 - -\n"))
    with pytest.raises(CompactError, match="header is missing date"):
        parse_compact(write(tmp_path, "", header=HEADER.replace("date: 2026-11-21\n", "")))


def test_builder_drop_and_criteria_block(tmp_path: Path) -> None:
    record, errors = build_one(tmp_path, "drop: exc-15, inc-5\n")
    assert errors == []
    ids = [c["id"] for c in record["criteria"]]
    assert "exc-15" not in ids and "inc-5" not in ids and "exc-14" in ids
    record, errors = build_one(tmp_path, """criteria:
  inc-1 | Male or non-pregnant ... female.
  exc-1 | Pregnant women ... requirements.
  exc-1.1 < exc-1 | Male and female ... requirements.

[exc-1.1]
Person | Male
""")
    assert errors == []
    assert [(c["id"], c["kind"], c["parent"]) for c in record["criteria"]] == [
        ("inc-1", "inclusion", None), ("exc-1", "exclusion", None), ("exc-1.1", "exclusion", "exc-1")]
    assert record["criteria"][2]["text"].startswith("Male and female") and entity(record, "exc-1.1")["text"] == "Male"


def test_builder_trial_overrides(tmp_path: Path) -> None:
    record, errors = build_one(tmp_path, "trial: enrollment = null\ntrial: phases = NA | N/A\ntrial: min_age = 18\n")
    assert errors == []
    trial = record["trial"]
    assert trial["enrollment"] is None and trial["min_age"]["value"] == 18 and trial["min_age"]["start"] is None
    [phase] = trial["phases"]
    assert record["source_text"][phase["start"] : phase["end"]] == "N/A" and phase["value"] == "NA"


def test_builder_check_mode_detects_stale_output(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    (src / f"{SEED}.txt").write_text(HEADER + "\n[exc-10]\nCondition | Primary or secondary immunodeficiency\n")
    assert main(["--src", str(src), "--out", str(out)]) == 0
    assert main(["--src", str(src), "--out", str(out), "--check"]) == 0
    (out / f"{SEED}.json").write_text("{}")
    assert main(["--src", str(src), "--out", str(out), "--check"]) == 1


def test_agreement_counts_a_removed_entity(tmp_path: Path) -> None:
    from evals.tools.agreement import agreement_table

    source = REPO / "evals" / "gold" / f"{SEED}.json"
    first = {SEED: load(source)}
    changed = load(source)
    changed.criteria[-1].entities.pop()
    n = len(first[SEED].entities())
    rows = agreement_table(first, {SEED: changed})
    strict = next(r for r in rows if r.startswith("entities.strict "))
    assert strict.split()[1:] == [f"{2 * (n - 1) / (2 * n - 1):.3f}", "1.000", f"{(n - 1) / n:.3f}",
                                  str(n - 1), "0", "1"]
    same = agreement_table(first, {SEED: load(source)})
    assert next(r for r in same if r.startswith("entities.strict ")).split()[1] == "1.000"
