"""Inputs a checkout cannot hold or that are too large to commit: FIFOs, symlinked and cyclic
directories, empty or unsupported directories, missing paths, a cell over the csv module's limit.
Each gives one clear error (or is read), and none can block, crash or silently drop a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline.errors import IngestError
from pipeline.ingest import Document, iter_documents, sha256_text
from tests.conftest import REPO


def _read(paths: list[Path]) -> list[Document | IngestError]:
    return list(iter_documents(paths))


def _ids_and_errors(items: list[Document | IngestError]) -> tuple[list[str], list[str]]:
    return ([i.doc_id for i in items if isinstance(i, Document)],
            [str(i) for i in items if isinstance(i, IngestError)])


def _page(path: Path, criterion: str = "adults") -> None:
    path.write_text(f"Inclusion Criteria:\n- {criterion}\n", encoding="utf-8")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo (POSIX)")
def test_fifo_is_reported_and_never_opened(tmp_path: Path) -> None:
    """Run in a child process with a timeout: opening a FIFO would block forever, and a test that
    hangs is worse than one that fails."""
    os.mkfifo(tmp_path / "pipe.txt")
    _page(tmp_path / "page.txt")
    script = textwrap.dedent(f"""
        from pathlib import Path
        from pipeline.ingest import iter_documents
        for item in iter_documents([Path({str(tmp_path)!r})]):
            print(str(item) if isinstance(item, Exception) else item.doc_id)
    """)
    try:
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail("reading a directory holding a FIFO blocked")
    assert done.stdout.splitlines() == ["page", f"{tmp_path / 'pipe.txt'}: not a regular file (a FIFO): not read"]


def test_symlinked_subdirectory_is_followed_and_a_cycle_reported(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _page(elsewhere / "linked.txt")
    root = tmp_path / "root"
    root.mkdir()
    _page(root / "direct.txt")
    (root / "link").symlink_to(elsewhere, target_is_directory=True)
    (elsewhere / "back").symlink_to(root, target_is_directory=True)
    ids, errors = _ids_and_errors(_read([root]))
    assert ids == ["direct", "linked"]
    assert errors == [f"{root / 'link' / 'back'}: symlink to a directory already read (a link cycle or a second "
                      "path to the same folder): not read again"]


def test_directory_without_supported_files_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "a.html").write_text("<p>x</p>", encoding="utf-8")
    (tmp_path / "html" / "b.html").write_text("<p>y</p>", encoding="utf-8")
    (tmp_path / "html" / "notes").write_text("z", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    ids, errors = _ids_and_errors(_read([tmp_path / "html", tmp_path / "empty"]))
    assert ids == []
    supported = ".csv, .json, .jsonl, .md, .txt, .zip"
    assert errors == [
        f"{tmp_path / 'html'}: no supported input files in this directory (reads {supported}; found 1 (no suffix), "
        "2 .html)",
        f"{tmp_path / 'empty'}: no input files in this directory (reads {supported})",
    ]


def test_run_over_an_unsupported_directory_or_a_missing_path_exits_1(tmp_path: Path) -> None:
    (tmp_path / "html").mkdir()
    (tmp_path / "html" / "a.html").write_text("<p>x</p>", encoding="utf-8")
    for target in (tmp_path / "html", tmp_path / "missing"):
        out = tmp_path / f"out-{target.name}"
        done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(target), "-o", str(out),
                               "--backend", "rules"], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        (error,) = [json.loads(line) for line in (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
        assert error["path"] == str(target)
        assert error["error"] in ("no such file or directory",
                                  "no supported input files in this directory (reads .csv, .json, .jsonl, .md, "
                                  ".txt, .zip; found 1 .html)")


def test_broken_symlink_named_as_input(tmp_path: Path) -> None:
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere.txt")
    ids, errors = _ids_and_errors(_read([tmp_path]))
    assert ids == [] and errors == [f"{tmp_path / 'gone.txt'}: no such file or directory (a broken symlink)"]


def test_csv_cell_over_the_csv_module_limit_is_read_and_later_rows_kept(tmp_path: Path) -> None:
    big = "- " + "x" * 140_000
    path = tmp_path / "big.csv"
    path.write_text(f'nct_id,criteria\nNCT1,"{big}"\nNCT2,- adults\n', encoding="utf-8")
    items = _read([path])
    assert [(i.doc_id, len(i.source_text)) for i in items if isinstance(i, Document)] == [("NCT1", len(big)),
                                                                                          ("NCT2", 8)]


def test_csv_bad_rows_do_not_swallow_the_rest_at_scale(tmp_path: Path) -> None:
    """Every other row is broken in a different way; every good row is read, every bad one reported."""
    lines = ["nct_id,criteria"]
    for i in range(0, 200, 2):
        lines.append(f"G{i},- adults")
        lines.append([f'B{i},"- open', f"B{i},a,b,c", f'B{i},"x"y'][i % 3])
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ids, errors = _ids_and_errors(_read([path]))
    assert ids == [f"G{i}" for i in range(0, 200, 2)]
    assert len(errors) == 100


def test_sha256_text_accepts_any_python_string() -> None:
    assert len(sha256_text("a\ud800b")) == 64
    assert sha256_text("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_an_unforeseen_reader_failure_costs_one_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-row guard: a bug in building one row's document becomes that row's error."""
    from pipeline.ingest import table

    original = table.row_metadata

    def fragile(row: dict[str, object], warnings: list[str]) -> object:
        if row.get("nct_id") == "NCT2":
            raise KeyError("boom")
        return original(row, warnings)

    monkeypatch.setattr(table, "row_metadata", fragile)
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"nct_id": f"NCT{i}", "criteria": "- a"}) + "\n" for i in (1, 2, 3)),
                    encoding="utf-8")
    ids, errors = _ids_and_errors(_read([path]))
    assert ids == ["NCT1", "NCT3"]
    assert errors == [f"{path}: row 2: unexpected KeyError: 'boom'"]
