"""The BRAT reader on real Chia files: offsets, discontinuous spans, \\r\\n texts, OR sets, bad lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.chia import unannotated_spans
from pipeline.evaluate.chia import DOMAIN_TYPES, read_chia_dir, read_chia_document
from tests.conftest import shared_path


def _doc(stem: str):
    return read_chia_document(shared_path(f"chia-dev/{stem}.txt"))


def test_document_identity_and_kind() -> None:
    doc = _doc("NCT00050349_inc")
    assert (doc.doc_id, doc.nct_id, doc.kind) == ("NCT00050349_inc", "NCT00050349", "inclusion")
    assert _doc("NCT00050349_exc").kind == "exclusion"


@pytest.mark.parametrize(
    ("stem", "entity_id", "typ", "text", "fragments"),
    [
        # chia-dev/NCT00050349_inc.ann: "T23 Measurement 429 444 total bilirubin"
        ("NCT00050349_inc", "T23", "Measurement", "total bilirubin", ((429, 444),)),
        # chia-dev/NCT00050349_inc.ann: "T19 Condition 331 356;368 376 major impairment of renal function"
        ("NCT00050349_inc", "T19", "Condition", "major impairment of renal function", ((331, 356), (368, 376))),
        # chia-dev/NCT00050349_inc.ann: "T43 Person 869 875 Female"
        ("NCT00050349_inc", "T43", "Person", "Female", ((869, 875),)),
    ],
)
def test_entities_match_the_text_at_their_offsets(stem, entity_id, typ, text, fragments) -> None:
    doc = _doc(stem)
    entity = next(e for e in doc.entities if e.id == entity_id)
    assert (entity.type, entity.text, entity.fragments) == (typ, text, fragments)
    assert " ".join(doc.text[s:e] for s, e in entity.fragments) == text
    assert (entity.start, entity.end) == (fragments[0][0], fragments[-1][1])


def test_crlf_text_keeps_offsets() -> None:
    # chia-dev/NCT02425774_exc.txt uses \r\n line ends and the .ann offsets count the \r
    doc = _doc("NCT02425774_exc")
    assert "\r\n" in doc.text
    assert doc.entities
    assert all(" ".join(doc.text[s:e] for s, e in ent.fragments) == ent.text for ent in doc.entities)


def test_offset_errors_are_reported_and_skipped() -> None:
    # chia-dev/NCT01980680_exc.ann: "T6 Observation 75 92 OHSS development" but the text there ends in \r
    doc = _doc("NCT01980680_exc")
    assert any("T6" in message and "OHSS development" in message for message in doc.offset_errors)
    assert "T6" not in {e.id for e in doc.entities}


def test_relations_and_or_sets() -> None:
    doc = _doc("NCT00050349_inc")
    # "R1 Has_value Arg1:T3 Arg2:T2" and "* OR T5 T6 T7" expanded pairwise
    assert ("Has_value", "T3", "T2") in doc.relations
    assert {("OR", "T5", "T6"), ("OR", "T5", "T7"), ("OR", "T6", "T7")} <= set(doc.relations)


def test_whole_dev_set_reads_with_few_offset_errors() -> None:
    docs = read_chia_dir(shared_path("chia-dev"))
    assert len(docs) == 1000
    assert [d.doc_id for d in docs] == sorted(d.doc_id for d in docs)
    errors = sum(len(d.offset_errors) for d in docs)
    assert 0 < errors < 20
    types = {e.type for d in docs for e in d.entities}
    assert set(DOMAIN_TYPES) <= types


def test_malformed_lines_never_crash(tmp_path: Path) -> None:
    (tmp_path / "NCT0_inc.txt").write_text("Age 18 years\n", encoding="utf-8")
    (tmp_path / "NCT0_inc.ann").write_text(
        "T1\tPerson 0 3\tAge\nT2\tValue x y\t18\nT3\tValue 4 99\tfar\nT4 truncated\nR1\tAND\n*\tOR\n", encoding="utf-8"
    )
    doc = read_chia_document(tmp_path / "NCT0_inc.txt")
    assert [e.id for e in doc.entities] == ["T1"]
    assert len(doc.offset_errors) == 3
    assert doc.relations == []


def test_missing_ann_means_no_annotations(tmp_path: Path) -> None:
    (tmp_path / "NCT1_exc.txt").write_text("Pregnancy\n", encoding="utf-8")
    doc = read_chia_document(tmp_path / "NCT1_exc.txt")
    assert (doc.kind, doc.entities, doc.offset_errors) == ("exclusion", [], [])


def test_unannotated_criteria_are_the_stretches_chia_labels_so() -> None:
    # chia-dev/NCT00183885_inc.ann: "T40 Informed_consent 467 475 agree to"; the Procedures on that line
    # ("blood sample drawn") are annotated, so only the labelled stretch is left out, not the line
    doc = _doc("NCT00183885_inc")
    assert unannotated_spans(doc) == [(467, 475)]
    assert doc.text[467:475] == "agree to"
    assert unannotated_spans(_doc("NCT00050349_inc")) == []
    docs = read_chia_dir(shared_path("chia-dev"))
    spans = {d.doc_id: unannotated_spans(d) for d in docs}
    inside = [
        e for d in docs for e in d.entities
        if e.type in DOMAIN_TYPES and any(a < e.end and e.start < b for a, b in spans[d.doc_id])
    ]  # fmt: skip
    assert (sum(map(len, spans.values())), len(inside)) == (1094, 167)


def test_cross_validation_leaves_out_only_what_overlaps_those_stretches() -> None:
    from evals.chia_cv import in_silent_spans

    doc = _doc("NCT00183885_inc")
    domain = [e for e in doc.entities if e.type in DOMAIN_TYPES]
    assert [e.text for e in domain if e.text in ("blood sample drawn", "routine labs")] == [
        "blood sample drawn", "routine labs"
    ]  # fmt: skip
    assert in_silent_spans(doc, domain) == []
    assert [e.text for e in in_silent_spans(doc, doc.entities)] == ["agree to"]
