"""`trialstruct export`: flat tables read back (csv module, pyarrow) and checked against records.jsonl."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.export.tables import TABLES
from pipeline.export.write import require_pyarrow
from pipeline.schema import TrialRecord
from tests.conftest import REPO, SEEDS, shared_path


def trialstruct(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pipeline", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=600)


def make_run(inputs: Path, out: Path) -> list[TrialRecord]:
    result = trialstruct("run", inputs, "-o", out, "--backend", "rules")
    assert result.returncode in (0, 1), result.stderr
    lines = (out / "records.jsonl").read_text(encoding="utf-8").splitlines()
    return [TrialRecord.model_validate_json(line) for line in lines if line.strip()]


@pytest.fixture(scope="module")
def seeds_run(tmp_path_factory) -> tuple[Path, list[TrialRecord]]:
    out = tmp_path_factory.mktemp("seeds") / "run"
    return out, make_run(SEEDS, out)


@pytest.fixture(scope="module")
def ctgov_run(tmp_path_factory) -> tuple[Path, list[TrialRecord]]:
    out = tmp_path_factory.mktemp("ctgov") / "run"
    return out, make_run(shared_path("ctgov"), out)


def read_csv(path: Path) -> list[dict[str, Any]]:
    """Rows with the declared types restored, an empty cell read as null (as pandas does)."""
    table = next(t for t in TABLES if t.name == path.stem)
    convert = {"string": str, "int64": int, "float64": float, "bool": {"true": True, "false": False}.__getitem__}
    types = {c.name: convert[c.type] for c in table.columns}
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == [c.name for c in table.columns]
        return [{k: None if v == "" else types[k](v) for k, v in row.items()} for row in reader]


def read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    declared = next(t for t in TABLES if t.name == path.stem).columns
    assert [(f.name, str(f.type)) for f in table.schema] == [
        (c.name, {"string": "string", "int64": "int64", "float64": "double", "bool": "bool"}[c.type]) for c in declared
    ]
    return table.to_pylist()


def check_against_records(folder: Path, suffix: str, records: list[TrialRecord]) -> None:
    read = read_csv if suffix == "csv" else read_parquet
    documents, criteria, entities = (read(folder / f"{t.name}.{suffix}") for t in TABLES)
    assert [d["doc_id"] for d in documents] == [r.doc_id for r in records]
    assert len(criteria) == sum(len(r.criteria) for r in records)
    assert len(entities) == sum(len(r.entities()) for r in records)
    texts = {d["doc_id"]: d["source_text"] or "" for d in documents}
    for record in records:
        assert texts[record.doc_id] == record.source_text
    for row in criteria + entities:
        assert texts[row["doc_id"]][row["start"] : row["end"]] == (row["text"] or "")
    expected = [
        (r.doc_id, c.id, e.id, e.start, e.end, e.negated, e.value.low if e.value else None,
         e.temporal.max_days if e.temporal else None)
        for r in records for c in r.criteria for e in c.entities
    ]  # fmt: skip
    assert [
        (e["doc_id"], e["criterion_id"], e["entity_id"], e["start"], e["end"], e["negated"], e["value_low"],
         e["temporal_max_days"])
        for e in entities
    ] == expected  # fmt: skip
    for part in ("value", "temporal"):
        spans = [e for e in entities if e[f"{part}_text"] is not None]
        assert spans, f"no entity with a {part} in the run"
        for e in spans:
            assert texts[e["doc_id"]][e[f"{part}_start"] : e[f"{part}_end"]] == e[f"{part}_text"]


def test_csv_tables_match_records_jsonl(seeds_run, tmp_path):
    run, records = seeds_run
    result = trialstruct("export", run, "--format", "csv", "-o", tmp_path / "tables")
    assert result.returncode == 0, result.stderr
    n_entities = sum(len(r.entities()) for r in records)
    assert f"entities {n_entities} rows" in result.stdout
    check_against_records(tmp_path / "tables", "csv", records)


def test_parquet_tables_match_records_jsonl(seeds_run):
    pytest.importorskip("pyarrow.parquet", reason='pyarrow is not installed (pip install -e ".[parquet]")')
    run, records = seeds_run
    result = trialstruct("export", run, "--format", "parquet")
    assert result.returncode == 0, result.stderr
    check_against_records(run / "tables", "parquet", records)
    assert sorted(p.name for p in (run / "tables").iterdir()) == [
        "criteria.parquet", "documents.parquet", "entities.parquet",
    ]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_tables_of_the_registry_studies_match_their_records(ctgov_run, tmp_path, suffix):
    if suffix == "parquet":
        pytest.importorskip("pyarrow.parquet", reason='pyarrow is not installed (pip install -e ".[parquet]")')
    run, records = ctgov_run
    assert trialstruct("export", run, "--format", suffix, "-o", tmp_path / "tables").returncode == 0
    check_against_records(tmp_path / "tables", suffix, records)


def test_a_bad_record_line_fails_the_export_and_keeps_the_earlier_tables(seeds_run, tmp_path):
    run, records = seeds_run
    bad_run = tmp_path / "run"
    bad_run.mkdir()
    lines = (run / "records.jsonl").read_text(encoding="utf-8")
    (bad_run / "records.jsonl").write_text(lines, encoding="utf-8")
    assert trialstruct("export", bad_run).returncode == 0
    before = {p.name: p.read_bytes() for p in (bad_run / "tables").iterdir()}
    (bad_run / "records.jsonl").write_text(lines + '{"doc_id": "broken"}\n', encoding="utf-8")
    result = trialstruct("export", bad_run)
    assert result.returncode == 2
    assert f"records.jsonl:{len(records) + 1}: not a valid TrialRecord" in result.stderr
    assert {p.name: p.read_bytes() for p in (bad_run / "tables").iterdir()} == before


def test_usage_errors_are_one_line_and_exit_2(tmp_path):
    result = trialstruct("export", tmp_path / "missing")
    assert result.returncode == 2
    expected = f"error: {tmp_path / 'missing'}: no such file (expected a run directory holding records.jsonl)"
    assert result.stderr.strip() == expected
    result = trialstruct("export", tmp_path, "--format", "xlsx")
    assert (result.returncode, result.stderr.strip()) == (2, "error: --format must be csv or parquet, not 'xlsx'")


def test_parquet_without_pyarrow_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(Exception, match=r'pip install -e "\.\[parquet\]"'):
        require_pyarrow()


def test_readme_documents_every_column():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Exports") :]
    section = section[: section.index("\n## ", 4)]
    for table in TABLES:
        assert f"`{table.name}.csv`" in section or f"`{table.name}`" in section
        missing = [c.name for c in table.columns if f"`{c.name}`" not in section]
        assert missing == [], f"README Exports lacks columns of {table.name}: {missing}"
