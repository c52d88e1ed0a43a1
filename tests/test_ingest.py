"""Ingest: formats, fields, and one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import IngestError
from pipeline.ingest import Document, iter_documents
from pipeline.segment import segment

CTGOV_STUDY = {
    "protocolSection": {
        "identificationModule": {"nctId": "NCT01234567", "briefTitle": "A small study"},
        "statusModule": {"overallStatus": "ACTIVE_NOT_RECRUITING", "completionDateStruct": {"date": "2027-02"}},
        "designModule": {"phases": ["PHASE2", "PHASE3"], "enrollmentInfo": {"count": 0}},
        "eligibilityModule": {"eligibilityCriteria": "Inclusion Criteria:\n\n* Adults\n\nExclusion Criteria:\n\n* None",
                              "sex": "FEMALE", "minimumAge": "6 Months", "healthyVolunteers": True},
    }
}


def _only(items: list[Document | IngestError]) -> Document:
    (item,) = items
    assert isinstance(item, Document), item
    return item


def test_ctgov_single_list_and_wrapped_forms(tmp_path: Path) -> None:
    for name, payload in (("one.json", CTGOV_STUDY), ("list.json", [CTGOV_STUDY]),
                          ("wrapped.json", {"studies": [CTGOV_STUDY]})):
        (tmp_path / name).write_text(json.dumps(payload), encoding="utf-8")
        record = segment(_only(list(iter_documents([tmp_path / name]))))
        assert record.doc_id == "NCT01234567"
        assert record.source_text == "A small study\n\n" + CTGOV_STUDY["protocolSection"]["eligibilityModule"][
            "eligibilityCriteria"]
        assert [(c.id, c.text) for c in record.criteria] == [("inc-1", "Adults"), ("exc-1", "None")]
        assert record.trial.status.value == "ACTIVE_NOT_RECRUITING"
        assert [p.value for p in record.trial.phases] == ["PHASE2", "PHASE3"]
        assert record.trial.end_date.value == "2027-02-28"
        assert record.trial.enrollment is None
        assert record.trial.sex.value == "FEMALE"
        assert record.trial.min_age.value == 0.5
        assert record.trial.healthy_volunteers.value is True


def test_csv_with_named_fields_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "aact.csv"
    path.write_text('trial,eligibility,gender,minimum_age,phase\n'
                    'T-1,"Inclusion Criteria:\n- hemoglobin < 80 g/L\n- age 18-75",All,18 Years,Phase 1/Phase 2\n',
                    encoding="utf-8")
    record = segment(_only(list(iter_documents([path], id_field="trial", text_field="eligibility"))))
    assert record.doc_id == "T-1"
    assert [c.text for c in record.criteria] == ["hemoglobin < 80 g/L", "age 18-75"]
    assert record.trial.sex.value == "ALL" and record.trial.min_age.value == 18
    assert [p.value for p in record.trial.phases] == ["PHASE1", "PHASE2"]
    assert record.source.format == "csv" and record.source.row == 1


def test_jsonl_bad_rows_are_reported_and_good_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"nct_id": "NCT00000001", "criteria": "- a"}\n{broken\n{"nct_id": "NCT00000002"}\n'
                    '{"nct_id": "NCT00000003", "criteria": "- c"}\n', encoding="utf-8")
    items = list(iter_documents([path]))
    assert [i.doc_id for i in items if isinstance(i, Document)] == ["NCT00000001", "NCT00000003"]
    errors = [str(i) for i in items if isinstance(i, IngestError)]
    assert errors[0].startswith(f"{path}: row 2: invalid JSON")
    assert errors[1] == (f"{path}: row 3: no criteria column (criteria / eligibility_criteria / eligibilitycriteria"
                         " / eligibility / criteria_text / text) among the keys found: 'nct_id'; name it with "
                         "--text-field")
    assert [i.row for i in items if isinstance(i, IngestError)] == [2, 3]


def test_bom_is_dropped_and_crlf_kept(tmp_path: Path) -> None:
    path = tmp_path / "page.txt"
    path.write_bytes("\ufeffInclusion Criteria:\r\n1. Adults\r\n2. Children\r\n".encode())
    record = segment(_only(list(iter_documents([path]))))
    assert record.source_text.startswith("Inclusion Criteria:\r\n")
    assert [c.text for c in record.criteria] == ["Adults", "Children"]


def test_bad_files_each_give_one_error(tmp_path: Path) -> None:
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (tmp_path / "empty.txt").write_bytes(b"  \n")
    (tmp_path / "latin1.txt").write_bytes("Inclusion Criteria:\n1. caf\xe9".encode("latin-1"))
    (tmp_path / "big.txt").write_text("x" * 200, encoding="utf-8")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    messages = {Path(i.path).name: i.message for i in iter_documents([tmp_path], max_bytes=100)}
    assert messages == {
        "bad.json": "invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes",
        "big.txt": "file is 200 bytes, over the 100-byte limit (--max-bytes)",
        "binary.txt": "binary file (contains NUL bytes), not a text document",
        "empty.txt": "file is empty",
        "latin1.txt": "not valid UTF-8: byte 0xe9 at offset 26",
    }


def test_unsupported_file_named_directly(tmp_path: Path) -> None:
    path = tmp_path / "study.pdf"
    path.write_bytes(b"%PDF-1.4")
    (error,) = list(iter_documents([path]))
    assert isinstance(error, IngestError) and error.message == "unsupported file type '.pdf'"


def test_jsonl_is_streamed_and_max_bytes_limits_a_row_not_the_file(tmp_path: Path) -> None:
    rows = [{"nct_id": f"NCT{n:08d}", "criteria": f"Inclusion Criteria:\n- age >= {n} years"} for n in range(200)]
    lines = [json.dumps(row) for row in rows]
    lines[7] = json.dumps({"nct_id": "NCT99999999", "criteria": "x" * 5000})  # one row over the limit
    big = tmp_path / "big.jsonl"
    big.write_bytes(("\n".join(lines) + "\n").encode() + b'{"nct_id": "NCT1", "criteria": "\xff"}\n'
                    + json.dumps(rows[0] | {"nct_id": "NCT00000999"}).encode())
    assert big.stat().st_size > 1000
    found = list(iter_documents([big], max_bytes=1000))
    errors = [item for item in found if isinstance(item, IngestError)]
    assert [(e.row, e.message.split(": ", 1)[1]) for e in errors] == [
        (8, "row is over the 1,000-byte limit (--max-bytes)"),
        (201, "not valid UTF-8: byte 0xff at byte 32 of the row"),
    ]
    documents = [item for item in found if isinstance(item, Document)]
    assert len(documents) == 200 and documents[-1].doc_id == "NCT00000999" and documents[-1].source.row == 202


def test_an_empty_or_binary_jsonl_file_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"\n  \n")
    (tmp_path / "binary.jsonl").write_bytes(b'{"a": 1}\x00\x00')
    messages = [str(e) for e in iter_documents([tmp_path / "empty.jsonl", tmp_path / "binary.jsonl"])]
    assert messages == [f"{tmp_path / 'empty.jsonl'}: file is empty",
                        f"{tmp_path / 'binary.jsonl'}: binary file (contains NUL bytes), not a text document"]
