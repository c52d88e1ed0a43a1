"""`trialstruct eval --backend`: gold documents re-ingested from their sources and run through a backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline.config import RunConfig
from pipeline.extract import load_backend
from pipeline.ingest import Document, iter_documents
from pipeline.run import process_document
from tests.conftest import REPO, SEEDS, shared_path

SEED = SEEDS / "000_a830f8c2bc95e8a6.txt"


def write_gold(gold_dir: Path, source: Path, backend: str, *, count: int = 1, path_override: str | None = None) -> None:
    """Gold records made by running `backend` on the first `count` documents of `source`."""
    gold_dir.mkdir()
    runner = load_backend(RunConfig(backend=backend))
    documents = [d for d in iter_documents([source]) if isinstance(d, Document)][:count]
    for document in documents:
        record, _ = process_document(document, runner)
        if path_override:
            record.source.path = path_override
        (gold_dir / f"{record.doc_id}.json").write_text(record.model_dump_json())


def run_eval(*args: str | Path) -> tuple[subprocess.CompletedProcess, dict]:
    out = Path(args[args.index("--json") + 1])
    command = [sys.executable, "-c", "from pipeline.cli import app; app()", "eval", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    return result, (json.loads(out.read_text()) if out.exists() else {})


def test_backend_against_its_own_output_is_perfect(tmp_path):
    write_gold(tmp_path / "gold", SEED, "rules")
    result, report = run_eval("--gold", tmp_path / "gold", "--backend", "rules", "--json", tmp_path / "r.json",
                              "--resamples", "20", "--record", tmp_path / "calls.jsonl", "--no-cache")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "calls.jsonl").read_text() == ""  # the rules backend makes no model calls
    assert report["backend"] == "rules"
    assert report["prediction_errors"] == []
    assert report["metrics"]["entities.strict"]["tp"] > 10
    assert all(m["f1"] == 1.0 for m in report["metrics"].values())


def test_missing_source_file_falls_back_to_gold_text(tmp_path):
    write_gold(tmp_path / "gold", SEED, "rules", path_override="nowhere/000_a830f8c2bc95e8a6.txt")
    result, report = run_eval("--gold", tmp_path / "gold", "--backend", "none", "--json", tmp_path / "r.json",
                              "--resamples", "20")
    assert result.returncode == 0, result.stderr
    assert report["prediction_errors"][0]["problem"].startswith("source nowhere/000_a830f8c2bc95e8a6.txt not found")
    assert report["metrics"]["criteria.segmentation"]["f1"] == 1.0
    relaxed = report["metrics"]["entities.relaxed"]
    assert relaxed["tp"] == 0 and relaxed["fp"] == 0 and relaxed["fn"] > 10


def test_structured_metadata_is_read_again_from_the_source(tmp_path):
    write_gold(tmp_path / "gold", shared_path("ctgov/nsclc-ctg-studies.json"), "none", count=2)
    result, report = run_eval("--gold", tmp_path / "gold", "--backend", "none", "--json", tmp_path / "r.json",
                              "--resamples", "20")
    assert result.returncode == 0, result.stderr
    assert report["prediction_errors"] == []
    assert report["metrics"]["metadata.nct_id"]["tp"] == 2
    assert report["metrics"]["metadata.phases"]["f1"] == 1.0
    assert report["metrics"]["metadata.sex"]["tp"] == 2


def test_unknown_backend_is_an_input_error(tmp_path):
    write_gold(tmp_path / "gold", SEED, "none")
    result, _ = run_eval("--gold", tmp_path / "gold", "--backend", "nosuch", "--json", tmp_path / "r.json")
    assert result.returncode == 2
    assert "unknown backend 'nosuch'" in result.stderr
