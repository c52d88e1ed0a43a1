"""The malformed-input corpus (tests/data/bad/, written by tests/data/make_bad_corpus.py): each file
gives its good documents and exactly the errors expected, each naming the file, the row and the problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import IngestError
from pipeline.ingest import Document, iter_documents
from pipeline.segment import segment
from tests.conftest import REPO
from tests.data.make_bad_corpus import BAD, EXPECTED, corpus

EXPECTATIONS: dict[str, dict[str, Any]] = json.loads(EXPECTED.read_text(encoding="utf-8"))


def test_committed_corpus_is_what_the_generator_writes() -> None:
    written = {name: content.encode("utf-8", "surrogatepass") for name, (content, _) in corpus().items()}
    assert {path.name: path.read_bytes() for path in BAD.iterdir()} == written
    assert {name: expectation for name, (_, expectation) in corpus().items()} == EXPECTATIONS


@pytest.mark.parametrize("name", sorted(EXPECTATIONS))
def test_each_bad_file_gives_its_documents_and_one_error_per_bad_row(name: str) -> None:
    expected = EXPECTATIONS[name]
    items = list(iter_documents([BAD / name]))
    documents = [item for item in items if isinstance(item, Document)]
    errors = [item for item in items if isinstance(item, IngestError)]
    assert [d.doc_id for d in documents] == expected["documents"]
    assert len(errors) == len(expected["errors"]), [str(e) for e in errors]
    for error, (row, words) in zip(errors, expected["errors"], strict=True):
        assert error.path == str(BAD / name) and error.row == row
        assert words in error.message, error.message
        assert str(error).startswith(f"{BAD / name}: " + (f"row {row}: " if row is not None else ""))
    for document in documents:
        record = segment(document)
        for where, span in record.spans():
            if span.start is not None:
                assert record.source_text[span.start:span.end] == span.text, where
        if document.doc_id in expected["warnings"]:
            assert any(expected["warnings"][document.doc_id] in w for w in record.warnings), record.warnings
        if document.doc_id in expected["kinds"]:
            assert "".join(c.kind[0].upper() for c in record.criteria) == expected["kinds"][document.doc_id]
        record.model_dump_json()  # writable: no lone surrogate got through


def test_run_over_the_corpus_writes_every_good_record_and_one_error_per_bad_input(tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(BAD), "-o", str(out), "--backend", "rules"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text(encoding="utf-8").split("\n") if line]
    assert [r["doc_id"] for r in records] == [doc for name in sorted(EXPECTATIONS)
                                              for doc in EXPECTATIONS[name]["documents"]]
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").split("\n") if line]
    expected = [(str(BAD / name), words) for name in sorted(EXPECTATIONS) for _, words in EXPECTATIONS[name]["errors"]]
    assert [(e["path"], e["stage"]) for e in errors] == [(path, "ingest") for path, _ in expected]
    rows = [row for name in sorted(EXPECTATIONS) for row, _ in EXPECTATIONS[name]["errors"]]
    assert [e["row"] for e in errors] == rows and any(row is not None for row in rows)
    assert all(words in e["error"] for e, (_, words) in zip(errors, expected, strict=True))
