"""Streaming inputs: a multi-study ClinicalTrials.gov file decoded a study at a time (whatever the
chunk size), malformed JSON in the middle of one, CSV read a record at a time, and reading lazily."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import IngestError
from pipeline.ingest import Document, iter_documents, iter_input_files, read_stream
from pipeline.ingest.ctgov import read_ctgov, study_document
from tests.conftest import REPO, shared_path
from tests.data.make_bad_corpus import study

CHUNKS = (7, 500, 1 << 20)  # smaller than a token, than a study, and larger than the file


def _registry_studies(copies: int) -> list[dict[str, Any]]:
    """The shared CT.gov studies repeated `copies` times, each copy with new NCT ids."""
    studies = json.loads(shared_path("ctgov/nsclc-ctg-studies.json").read_text(encoding="utf-8"))
    repeated = []
    for number in range(copies):
        for original in studies:
            renamed = copy.deepcopy(original)
            ident = renamed["protocolSection"]["identificationModule"]
            ident["nctId"] = f"NCT{number + 1:02d}{ident['nctId'][5:]}"
            repeated.append(renamed)
    return repeated


def _read(content: bytes, chunk: int, max_bytes: int = 20_000_000, name: str = "page.json"
          ) -> list[Document | IngestError]:
    handle = io.BufferedReader(io.BytesIO(content))  # type: ignore[arg-type]
    return list(read_ctgov(Path(name), handle, max_bytes, chunk))


def _outline(items: list[Document | IngestError]) -> list[str]:
    """Documents as their id, errors as their message (which starts `row N: ` for a row's), in order."""
    return [item.doc_id if isinstance(item, Document) else item.message for item in items]


@pytest.mark.parametrize("layout", ["compact", "indented"])
def test_a_registry_page_gives_every_study_as_one_at_a_time_would(layout: str) -> None:
    studies = _registry_studies(3)
    page = {"studies": studies, "nextPageToken": "NF0g5JGBlPMuwQY"}
    content = json.dumps(page, indent=2 if layout == "indented" else None, ensure_ascii=False).encode()
    expected = [study_document(Path("page.json"), row, s) for row, s in enumerate(studies, start=1)]
    assert len({d.doc_id for d in expected if isinstance(d, Document)}) == 300
    for chunk in CHUNKS:
        assert _read(content, chunk) == expected, chunk


def test_a_list_and_a_single_study_read_the_same_streamed() -> None:
    studies = _registry_studies(1)[:4]
    for chunk in CHUNKS:
        assert _outline(_read(json.dumps(studies).encode(), chunk)) == [
            s["protocolSection"]["identificationModule"]["nctId"] for s in studies]
        (one,) = _read(json.dumps(studies[0]).encode(), chunk)
        assert one == study_document(Path("page.json"), 1, studies[0])


def _page(*parts: str) -> bytes:
    return ("[" + ",".join(parts) + "]").encode()


GOOD = [json.dumps(study(f"NCT1000000{n}")) for n in range(1, 6)]
BROKEN = {  # a study of GOOD[1]'s shape with garbage at a place of its structure
    "balanced": GOOD[1].replace('"identificationModule": {', '"identificationModule": @ {'),
    "unbalanced": GOOD[1].replace('"identificationModule": {', '"identificationModule": [{'),
    "unquoted": GOOD[1].replace('"eligibilityModule"', "eligibilityModule"),
}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_garbage_inside_a_study_costs_that_study_and_the_rest_is_read(kind: str) -> None:
    content = _page(GOOD[0], BROKEN[kind], GOOD[2], GOOD[3])
    for chunk in CHUNKS:
        items = _read(content, chunk)
        outline = _outline(items)
        assert [outline[0], *outline[2:]] == ["NCT10000001", "NCT10000003", "NCT10000004"], (chunk, outline)
        error = items[1]
        assert isinstance(error, IngestError) and error.row == 2
        assert error.message.startswith("row 2: invalid JSON at line 1 column ")
        assert "; reading resumed " in error.message
        assert [d.source.row for d in items if isinstance(d, Document)] == [1, 3, 4]


def test_garbage_between_studies_is_reported_where_it_is() -> None:
    cases = {
        "junk element": (_page(GOOD[0], "@@@", GOOD[2]), ["NCT10000001", "row 2: invalid JSON", "NCT10000003"]),
        "missing comma": (("[" + GOOD[0] + " " + GOOD[1] + "]").encode(),
                          ["NCT10000001", "after row 1: invalid JSON", "NCT10000002"]),
        "stray brace": (("[" + GOOD[0] + "}," + GOOD[2] + "]").encode(),
                        ["NCT10000001", "after row 1: invalid JSON", "NCT10000003"]),
        "trailing comma": (_page(GOOD[0], GOOD[1], ""), ["NCT10000001", "NCT10000002", "row 3: invalid JSON"]),
        "extra data": (_page(GOOD[0]) + b" x", ["NCT10000001", "invalid JSON at line 1 column"]),
    }
    for name, (content, expected) in cases.items():
        for chunk in CHUNKS:
            outline = _outline(_read(content, chunk))
            assert len(outline) == len(expected), (name, chunk, outline)
            assert all(got.startswith(want) for got, want in zip(outline, expected, strict=True)), (name, outline)
    (missing_comma,) = [i for i in _read(cases["missing comma"][0], 7) if isinstance(i, IngestError)]
    assert "Expecting ',' delimiter; reading resumed at the next study, line 1 column" in missing_comma.message


def test_a_truncated_file_gives_the_studies_before_and_says_where_it_ends() -> None:
    content = json.dumps({"studies": [json.loads(s) for s in GOOD]}, indent=1).encode()
    cut = content[:content.index(b"NCT10000004") + 4]
    for chunk in CHUNKS:
        outline = _outline(_read(cut, chunk))
        assert outline[:3] == ["NCT10000001", "NCT10000002", "NCT10000003"]
        assert len(outline) == 4 and outline[3].startswith("row 4: invalid JSON at line ")
        assert outline[3].endswith("Unterminated string; the file ends inside this study (truncated?)")
    between = content[:content.index(b"NCT10000004") - 60]  # cut between two studies
    assert _outline(_read(between.rstrip()[:between.rstrip().rindex(b"}") + 1], 7))[-1] == (
        "the file ends inside the list of studies, after row 3 (truncated?)")


def test_max_bytes_limits_one_study_not_the_file() -> None:
    huge = json.dumps(study("NCT19999999", eligibilityModule={"eligibilityCriteria": "- adults\n" * 300}))
    content = _page(GOOD[0], huge, GOOD[2])
    limit = len(huge) - 1
    assert len(content) > limit > 2 * len(GOOD[0])
    for chunk in CHUNKS:
        assert _outline(_read(content, chunk, max_bytes=limit)) == [
            "NCT10000001", f"row 2: study is over the {limit:,}-byte limit (--max-bytes); reading resumed after it, "
                           f"at line 1 column {len(GOOD[0]) + len(huge) + 3}", "NCT10000003"]
        assert _outline(_read(content, chunk, max_bytes=len(huge)))[1] == "NCT19999999"


def test_bytes_that_are_not_utf8_cost_their_study_only() -> None:
    content = _page(GOOD[0], GOOD[1], GOOD[2]).replace(b"Study NCT10000002", b"Study \xe9 NCT10000002")
    column = content.index(b"\xe9") + 1
    for chunk in CHUNKS:
        outline = _outline(_read(content, chunk))
        assert outline[0::2] == ["NCT10000001", "NCT10000003"]
        assert outline[1].startswith(f"row 2: not valid UTF-8: byte 0xe9 at line 1 column {column};")


def test_whole_file_problems_are_one_error_for_the_file() -> None:
    for content, message in ((b" \n ", "file is empty"), (b"42", "JSON is not a ClinicalTrials.gov study"),
                             (b'{"studies": null}', "JSON is not a ClinicalTrials.gov study"),
                             (b"{", "invalid JSON at line 1 column 2: Expecting property name enclosed in double "
                                    "quotes"),
                             (b'{"a": ' + b"[" * 100_000, "JSON nested too deeply to read")):
        for chunk in CHUNKS:
            (error,) = _read(content, chunk)
            assert isinstance(error, IngestError) and error.row is None and error.message.startswith(message)
    (deep,) = _read(b"[" * 100_000, 7)
    assert isinstance(deep, IngestError)
    assert deep.message == ("row 1: JSON nested too deeply to read (at line 1 column 2); the file ends inside this "
                            "study (truncated?)")


class _CountingReader(io.RawIOBase):
    """A byte stream that records how much of it has been read."""

    def __init__(self, content: bytes) -> None:
        self.source, self.read_so_far = io.BytesIO(content), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.source.read(min(len(buffer), 4096))
        buffer[:len(data)] = data
        self.read_so_far += len(data)
        return len(data)


@pytest.mark.parametrize("name", ["big.json", "big.csv", "big.jsonl"])
def test_the_first_document_comes_before_the_file_is_read(name: str) -> None:
    rows = [{"nct_id": f"NCT{n:08d}", "criteria": f"- age >= {n}"} for n in range(20_000)]
    if name.endswith(".json"):
        content = json.dumps({"studies": [json.loads(json.dumps(study(r["nct_id"]))) for r in rows]}).encode()
    elif name.endswith(".csv"):
        content = ("nct_id,criteria\n" + "".join(f'{r["nct_id"]},"{r["criteria"]}"\n' for r in rows)).encode()
    else:
        content = "".join(json.dumps(r) + "\n" for r in rows).encode()
    raw = _CountingReader(content)
    items = read_stream(Path(name), io.BufferedReader(raw), 1000, id_field=None, text_field=None)
    first = next(items)
    assert isinstance(first, Document) and first.doc_id == "NCT00000000"
    assert raw.read_so_far < len(content) / 4
    assert sum(1 for _ in items) == 19_999


def test_csv_max_bytes_limits_one_record_and_reading_resumes(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    rows = [f"NCT{n:08d},- adults aged {n}" for n in range(300)]
    rows[5] = "NCT00000005," + "x" * 2000  # one record over the limit
    rows[9] = 'NCT00000009,"- never closed'  # an unterminated quote: bounded by the limit too
    path.write_text("nct_id,criteria\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert path.stat().st_size > 5000
    items = list(iter_documents([path], max_bytes=1000))
    errors = [(e.row, e.message) for e in items if isinstance(e, IngestError)]
    assert errors == [
        (6, "row 6: record is over the 1,000-byte limit (--max-bytes; an unterminated quote?) (line 7)"),
        (10, "row 10: record is over the 1,000-byte limit (--max-bytes; an unterminated quote?) (line 11)"),
    ]
    documents = [d for d in items if isinstance(d, Document)]
    assert len(documents) == 298 and documents[-1].source.row == 300 and documents[6].doc_id == "NCT00000007"


def test_csv_bytes_that_are_not_utf8_cost_their_row_only(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"nct_id,criteria\nNCT1,- adults\nNCT2,- caf\xe9\nNCT3,- children\n")
    items = list(iter_documents([path]))
    assert [i.doc_id if isinstance(i, Document) else i.message for i in items] == [
        "NCT1", "row 2: not valid UTF-8: byte 0xe9 (line 3)", "NCT3"]


def test_csv_blank_file_is_empty_and_leading_blank_lines_keep_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "blank.csv").write_text(" \n\n  \n", encoding="utf-8")
    (tmp_path / "late.csv").write_text('\n \nnct_id,criteria\nNCT1,- a\nNCT2,"- b\n', encoding="utf-8")
    items = list(iter_documents([tmp_path / "blank.csv", tmp_path / "late.csv"]))
    assert _outline(items) == [
        "file is empty", "NCT1",
        "row 2: unterminated quote: the quoted cell opened here never closes (line 5)"]


def test_a_directory_is_walked_as_it_is_read(tmp_path: Path) -> None:
    """Files are found lazily: a file added to a later folder while reading is still found."""
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "1.txt").write_text("Inclusion Criteria:\n- adults\n", encoding="utf-8")
    walk = iter_input_files([tmp_path])
    assert next(walk) == tmp_path / "a" / "1.txt"
    (tmp_path / "b" / "2.txt").write_text("Inclusion Criteria:\n- adults\n", encoding="utf-8")
    assert list(walk) == [tmp_path / "b" / "1.txt", tmp_path / "b" / "2.txt"]


def test_standard_input_json_is_streamed_and_max_bytes_limits_one_study(tmp_path: Path) -> None:
    page = json.dumps({"studies": [study(f"NCT1000000{n}") for n in range(1, 6)]}, indent=1)
    limit = len(page) // 3  # the page is over it, each study under it
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "-", "-o", str(tmp_path / "out"), "--backend",
                           "none", "--max-bytes", str(limit)], input=page, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in (tmp_path / "out" / "records.jsonl").read_text(encoding="utf-8").split("\n")
               if line]
    assert [(r["doc_id"], r["source"]["row"]) for r in records] == [(f"NCT1000000{n}", n) for n in range(1, 6)]
