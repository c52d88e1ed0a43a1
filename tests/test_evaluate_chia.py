"""Chia adapter: BRAT gold against schema entities, discontinuous spans, offset errors, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import RunConfig
from pipeline.evaluate.chia import read_chia_dir
from pipeline.evaluate.match import Counts
from pipeline.evaluate.metrics import entity_counts
from pipeline.extract.rules import Backend as RulesBackend
from pipeline.extract.rules.lexicon import Lexicon
from pipeline.schema import Entity
from tests.conftest import REPO, shared_path

TEXT = "History of breast or ovarian cancer\r\nPlatelets < 100 x10^9/L\r\nPregnant women\r\n"
ANN = "\n".join([
    "T1\tCondition 11 17;29 35\tbreast cancer",  # discontinuous: "breast" + "cancer"
    "T2\tCondition 21 35\tovarian cancer",
    "T3\tMeasurement 37 46\tPlatelets",
    "T4\tValue 47 60\t< 100 x10^9/L",  # not a domain type: ignored
    "T5\tCondition 62 70\tPregnant",
    "T6\tPerson 71 76\twomen",
    "T7\tDrug 0 7\tHistorx",  # text does not match the offsets: reported and skipped
    "R1\tHas_value Arg1:T3 Arg2:T4",
]) + "\n"


def entity(type_: str, start: int, end: int) -> Entity:
    return Entity(id=f"exc-1.e{start}", type=type_, text=TEXT[start:end], start=start, end=end)


@pytest.fixture
def chia_dir(tmp_path: Path) -> Path:
    (tmp_path / "NCT00000001_exc.txt").write_bytes(TEXT.encode())
    (tmp_path / "NCT00000001_exc.ann").write_text(ANN, newline="")
    return tmp_path


def test_discontinuous_spans_strict_by_fragments_relaxed_by_hull(chia_dir):
    (doc,) = read_chia_dir(chia_dir)
    gold = [e for e in doc.entities if e.type != "Value"]
    pred = [entity("Condition", 11, 35), entity("Condition", 21, 35), entity("Measurement", 37, 46),
            entity("Condition", 62, 70), entity("Person", 71, 77)]
    counts, pairs = entity_counts(gold, pred)
    assert counts["entities.strict"] == Counts(tp=3, fp=2, fn=2)
    assert counts["entities.strict.Condition"] == Counts(tp=2, fp=1, fn=1)
    assert counts["entities.relaxed"] == Counts(tp=5, fp=0, fn=0)
    assert counts["entities.relaxed.Person"] == Counts(tp=1)
    assert len(pairs) == 5


def run_eval(*args: str | Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from pipeline.cli import app; app()", "eval", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=REPO)


def test_cli_scores_chia_and_reports_offset_errors(chia_dir, tmp_path):
    out = tmp_path / "chia.json"
    result = run_eval("--chia", chia_dir, "--backend", "none", "--json", out, "--resamples", "20")
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["metrics"]["entities.relaxed"] == Counts(fn=5).as_dict()
    assert report["metrics"]["entities.strict.Condition"] == Counts(fn=3).as_dict()
    assert set(report["metrics"]) == {name for name in report["metrics"] if name.startswith("entities.")}
    assert len(report["offset_errors"]) == 1
    assert "T7" in report["offset_errors"][0]
    assert "corpus offset errors skipped: 1" in result.stdout


def test_cli_chia_needs_a_backend(chia_dir):
    result = run_eval("--chia", chia_dir)
    assert result.returncode == 2
    assert "--chia needs --backend" in result.stderr


def test_rules_backend_on_real_chia_documents(tmp_path):
    out = tmp_path / "chia.json"
    chia = shared_path("chia-dev")
    result = run_eval("--chia", chia, "--backend", "rules", "--limit", "20", "--json", out, "--resamples", "50")
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["documents_scored"] == 20
    relaxed = report["metrics"]["entities.relaxed"]
    assert relaxed["tp"] > 0 and relaxed["fn"] > 0
    assert relaxed["f1"] >= report["metrics"]["entities.strict"]["f1"]
    assert report["missing_documents"] == []


def test_scores_on_the_lexicon_training_texts_are_flagged_in_sample_by_content(tmp_path):
    chia = shared_path("chia-dev")
    corpus = tmp_path / "copied-elsewhere"
    corpus.mkdir()
    seen, unseen = "NCT00050349_inc", "NCT00050349_exc"
    for name, stem in ((seen, "NCT99999998_inc"), (unseen, "NCT99999999_exc")):
        (corpus / f"{stem}.ann").write_bytes((chia / f"{name}.ann").read_bytes())
        (corpus / f"{stem}.txt").write_bytes((chia / f"{name}.txt").read_bytes())
    changed = corpus / "NCT99999999_exc.txt"
    changed.write_bytes(changed.read_bytes() + b"\n")
    out, markdown = tmp_path / "chia.json", tmp_path / "chia.md"
    result = run_eval("--chia", corpus, "--backend", "rules", "--json", out, "--markdown", markdown, "--resamples", "5")
    assert result.returncode == 0, result.stderr
    in_sample = json.loads(out.read_text())["in_sample"]
    assert (in_sample["documents"], in_sample["of"], in_sample["doc_ids"]) == (1, 2, ["NCT99999998_inc"])
    warning = "IN-SAMPLE: 1 of 2 scored documents were used to build the rules backend"
    assert warning in result.stderr and f"python evals/chia_cv.py {corpus}" in result.stderr
    assert f"- WARNING {warning}" in markdown.read_text()


def test_unseen_texts_and_other_backends_get_no_in_sample_warning(chia_dir, tmp_path):
    for backend in ("rules", "none"):
        out = tmp_path / f"{backend}.json"
        result = run_eval("--chia", chia_dir, "--backend", backend, "--json", out, "--resamples", "5")
        assert result.returncode == 0, result.stderr
        assert json.loads(out.read_text())["in_sample"] is None
        assert "IN-SAMPLE" not in result.stderr + result.stdout


def test_only_the_shipped_lexicon_claims_its_training_texts():
    text = shared_path("chia-dev/NCT00050349_inc.txt").read_text(encoding="utf-8")
    config = RunConfig(backend="rules")
    assert RulesBackend(config).trained_on(text)
    assert not RulesBackend(config).trained_on(text + " ")
    assert not RulesBackend(config, lexicon=Lexicon()).trained_on(text)
