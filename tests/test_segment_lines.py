"""Segmentation edge cases: line endings, wrapped labels, long and deep lists, and criteria headers
as registries write them (each header variant with a real instance from ../shared/data, cited)."""

from __future__ import annotations

from functools import cache

import pytest

from pipeline.ingest import Document, iter_documents, sha256_text
from pipeline.schema import Source, TrialRecord
from pipeline.segment import segment
from pipeline.segment.headers import match_header
from tests.conftest import shared_path


def _record(text: str, layout: str = "criteria") -> TrialRecord:
    # A criteria-layout text file would be read one criterion a line (Chia's layout): use a table's.
    source = Source(path="generated.jsonl", format="jsonl", sha256=sha256_text(text))
    record = segment(Document("generated", source, text, layout=layout))  # type: ignore[arg-type]
    for where, span in record.spans():
        if span.start is not None:
            assert text[span.start:span.end] == span.text, where
    return record


def _criteria(text: str, layout: str = "criteria") -> list[tuple[str, str, str]]:
    return [(c.id, c.kind, c.text) for c in _record(text, layout).criteria]


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_every_line_ending_splits_alike(newline: str) -> None:
    text = newline.join(["Inclusion Criteria:", "1. Adults", "2. Children", "Exclusion Criteria:", "1. Pregnancy", ""])
    assert _criteria(text) == [("inc-1", "inclusion", "Adults"), ("inc-2", "inclusion", "Children"),
                               ("exc-1", "exclusion", "Pregnancy")]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"])
def test_nothing_else_is_a_line_break(separator: str) -> None:
    assert _criteria(f"Inclusion Criteria:\n- adults{separator}- children\n") == [
        ("inc-1", "inclusion", f"adults{separator}- children")]


def test_label_word_ending_a_wrapped_criterion_does_not_end_the_section() -> None:
    page = ("A page\nCriteria\nInclusion Criteria:\n1. Adults in the expansion cohort (Phase\n2 only)\n"
            "2. Measurable disease\nExclusion Criteria:\n1. Pregnancy\nStudy Design\nRandomised\n")
    assert _criteria(page, "page") == [
        ("inc-1", "inclusion", "Adults in the expansion cohort (Phase\n2 only)"),
        ("inc-2", "inclusion", "Measurable disease"), ("exc-1", "exclusion", "Pregnancy")]


def test_numbered_list_beyond_999_items() -> None:
    text = "Inclusion Criteria:\n" + "".join(f"{i}. item {i}\n" for i in range(1, 10_001))
    criteria = _criteria(text)
    assert len(criteria) == 10_000 and criteria[-1] == ("inc-10000", "inclusion", "item 10000")


def test_large_numbers_open_an_item_only_when_they_continue_the_list() -> None:
    assert _criteria("Inclusion Criteria:\n1. Diagnosed per WHO criteria.\n2019. guidelines apply\n") == [
        ("inc-1", "inclusion", "Diagnosed per WHO criteria.\n2019. guidelines apply")]


def test_markdown_ones_are_siblings_not_a_deepening_tree() -> None:
    text = "Inclusion Criteria:\n" + "".join(f"1. item {i}\n" for i in range(1, 1_501))
    criteria = _criteria(text)
    assert [c[0] for c in criteria] == [f"inc-{i}" for i in range(1, 1_501)]


def test_a_restarted_list_under_an_item_still_nests() -> None:
    text = ("Inclusion Criteria:\n1. Adequate function:\n2. Labs as follows:\n   1. ANC > 1.5\n   2. Hb > 9\n"
            "3. Consent\n")
    assert [(c[0], c[2]) for c in _criteria(text)] == [
        ("inc-1", "Adequate function:"), ("inc-2", "Labs as follows:"), ("inc-2.1", "ANC > 1.5"),
        ("inc-2.2", "Hb > 9"), ("inc-3", "Consent")]


def test_nesting_is_bounded() -> None:
    text = "".join("  " * depth + f"- level {depth}\n" for depth in range(3_000))
    criteria = _record(text).criteria
    assert len(criteria) == 3_000
    assert max(c.id.count(".") for c in criteria) == 7


@pytest.mark.parametrize(("line", "kind", "end"), [
    ("Key Inclusion Criteria:", "inclusion", None),
    ("Patient Inclusion Criteria:", "inclusion", None),
    ("Donor Eligibility Criteria:", "inclusion", None),
    ("Inclusion criteria for Part B:", "inclusion", None),
    ("Exclusion Criteria for cohort 2", "exclusion", None),
    ("Part II: Key Exclusion Criteria for SLE Participants:", "exclusion", None),
    ("A. INCLUSION CRITERIA", "inclusion", None),
    ("Inclusion Criteria (all of the 8 must be met):", "inclusion", None),
    ("Key inclusion criteria include:", "inclusion", None),
    ("Subjects will be included if:", "inclusion", None),
    ("Patients are not eligible if:", "exclusion", None),
    ("A volunteer will be excluded if one or more of the following conditions apply:", "exclusion", None),
    ("Inclusion Criteria:1. Age 18", "inclusion", len("Inclusion Criteria:")),
])
def test_header_variants(line: str, kind: str, end: int | None) -> None:
    header = match_header(line)
    assert header is not None and header.kind == kind
    assert header.end == (end if end is not None else len(line))


@pytest.mark.parametrize("line", [
    "Other protocol-defined inclusion/exclusion criteria may apply",
    "Subjects must meet all of the following inclusion criteria to be eligible for enrollment",
    "Patients will be excluded if they have allergies to the following drugs:",
    "CNS metastases are eligible, provided they meet all of the following criteria:",
    "or MUGA scan. Exclusion Criteria: - Use of investigational agents",
    "treated with dapagliflozin Exclusion Criteria: - Receipt of any product",
    "eligibility criteria for the study",
    "Inclusion Criteria 4. Written informed consent",
    "3. Inclusion criteria of the parent study:",
    "Inclusion of women and minorities",
    "NONE of the Exclusion criteria.",
])
def test_sentences_and_criteria_are_not_headers(line: str) -> None:
    assert match_header(line) is None


@cache
def _shared_documents() -> dict[str, Document]:
    paths = [shared_path("hint/hint-trials.jsonl"), shared_path("ctgov")]
    return {item.doc_id: item for item in iter_documents(paths) if isinstance(item, Document)}


# (document, header line as written there, kind of the criteria it opens)
REAL_HEADERS = [
    ("NCT03249194", "Donor Exclusion Criteria:", "exclusion"),
    ("NCT01211626", "Part B Exclusion Criteria:", "exclusion"),
    ("NCT02106897", "Part II: Key Exclusion Criteria for SLE Participants:", "exclusion"),
    ("NCT02555709", "Healthy Volunteer Exclusion Criteria:", "exclusion"),
    ("NCT00417677", "Exclusion Criteria for Dose Escalation Phase", "exclusion"),
    ("NCT02207621", "Subject exclusion criteria", "exclusion"),
    ("NCT00512798", "Exclusion Criteria - for Phase I", "exclusion"),
    ("NCT01476137", "Inclusion Criteria for Part 2A only:", "inclusion"),  # read before too: a guard
    ("NCT02245672", "Key exclusion criteria include:", "exclusion"),
    ("NCT03714672", "Exclusion Criteria at Enrollment:", "exclusion"),
    ("NCT00099463", "A volunteer will be excluded if one or more of the following conditions apply:", "exclusion"),
    ("NCT00448214", "Subjects are eligible for the study if all of the following apply:", "inclusion"),
    ("NCT06751901", "Disease-specific exclusion criteria:", "exclusion"),
]


@pytest.mark.parametrize(("doc_id", "header", "kind"), REAL_HEADERS)
def test_real_header_is_a_heading_and_sets_the_kind(doc_id: str, header: str, kind: str) -> None:
    record = segment(_shared_documents()[doc_id])
    at = record.source_text.index(header)
    assert all(c.text != header for c in record.criteria), "a heading read as a criterion"
    following = next(c for c in record.criteria if c.start > at)
    assert following.kind == kind, following


def test_page_whose_header_has_a_qualifier_gets_its_criteria() -> None:
    page = ("A study\nStatus:\nRecruiting\nPatient Inclusion Criteria:\n1. Adults\nPatient Exclusion Criteria:\n"
            "1. Pregnancy\n")
    assert _criteria(page, "page") == [("inc-1", "inclusion", "Adults"), ("exc-1", "exclusion", "Pregnancy")]


def test_warning_when_criteria_are_mentioned_but_none_read() -> None:
    record = _record("A study\nStatus:\nRecruiting\nParticipants must meet the eligibility rules below.\n", "page")
    assert record.criteria == []
    assert record.warnings[-1] == ("no criteria read, though the text mentions them at offset 54 ('Participants must "
                                   "meet the eligibility rules below.'): an unrecognised header or layout?")
    assert "no criteria read" not in " ".join(_record("A study\nStatus:\nRecruiting\n", "page").warnings)

