"""Grounding: offsets come from the source, never from the model."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from pipeline.extract.llm import CriterionItem, EntityOut, GroundingContext, batches, criterion_items, ground_entity
from pipeline.ground import locate, number_occurs, numbers_in
from pipeline.schema import Criterion, Source, TrialRecord

SOURCE = (
    "Exclusion Criteria:\n1. Hemoglobin  < 9 g/dL within 3 months\n2. Type 2\nDiabetes mellitus; diabetes insipidus\n"
)


def span_of(text: str) -> tuple[int, int]:
    start = SOURCE.index(text)
    return start, start + len(text)


def test_exact_match_is_preferred_and_offsets_are_absolute() -> None:
    match = locate(SOURCE, 0, len(SOURCE), "Hemoglobin")
    assert (match.start, match.end, match.alignment) == (*span_of("Hemoglobin"), "exact")


def test_case_and_whitespace_differences_still_align_exactly_to_the_source_text() -> None:
    match = locate(SOURCE, 0, len(SOURCE), "type 2 diabetes MELLITUS")
    assert match.text == "Type 2\nDiabetes mellitus"
    assert match.alignment == "exact"
    assert SOURCE[match.start : match.end] == match.text


def test_fuzzy_match_above_threshold_is_marked_fuzzy() -> None:
    match = locate(SOURCE, 0, len(SOURCE), "diabetes insipdus")
    assert (match.text, match.alignment) == ("diabetes insipidus", "fuzzy")
    assert 0.85 <= match.score < 1


def test_text_absent_from_the_span_is_not_grounded() -> None:
    assert locate(SOURCE, 0, len(SOURCE), "unicorn fever") is None
    start, end = span_of("Hemoglobin  < 9 g/dL")
    assert locate(SOURCE, start, end, "diabetes") is None  # present in the document, not in this span


def test_a_match_never_cuts_a_word() -> None:
    match = locate("no diabetic history", 0, 19, "diabet")
    assert match is None or match.text == "diabetic"


def test_nearest_occurrence_wins() -> None:
    text = "diabetes or prior diabetes"
    assert locate(text, 0, len(text), "diabetes", near=20).start == 18


def test_numbers_written_in_text() -> None:
    assert numbers_in("Hb < 9 g/dL, ANC >= 1,500/mm3, dose 2.5 mg, HbA1c 7,5%") == {9, 1500, 2.5, 7.5}
    assert number_occurs(9, "Hb < 9 g/dL")
    assert not number_occurs(99, "Hb < 9 g/dL")
    assert not number_occurs(1, "HbA1c above target")


@example(words=["9", "9", "9B", "B", "B", "B"], gaps=[" ", " ", " ", " ", "  ", " ", " ", " "], i=3, n=3)
@given(
    st.lists(st.text(alphabet="abAB<9", min_size=1, max_size=4), min_size=1, max_size=8),
    st.lists(st.sampled_from([" ", "  ", "\n", " \n "]), min_size=8, max_size=8),
    st.integers(0, 7),
    st.integers(1, 8),
)
def test_whole_words_are_found_as_a_true_slice(words: list[str], gaps: list[str], i: int, n: int) -> None:
    source = "".join(word + gap for word, gap in zip(words, gaps, strict=False))
    needle = " ".join(words[i : i + n]).upper()
    match = locate(source, 0, len(source), needle)
    if not needle:
        assert match is None
        return
    assert match is not None and match.alignment == "exact"
    assert source[match.start : match.end] == match.text
    assert match.text.upper().split() == needle.split()


def context() -> GroundingContext:
    start, end = span_of("Hemoglobin  < 9 g/dL within 3 months")
    return GroundingContext(SOURCE, {"exc-1": CriterionItem("exc-1", start, end, SOURCE[start:end])})


def test_ground_entity_places_value_and_temporal_spans() -> None:
    out = EntityOut(criterion="exc-1", text="hemoglobin", type="Measurement",
                    value={"comparator": "<", "high": 9, "unit": "g/dL", "text": "< 9 g/dL"},
                    temporal={"text": "within 3 months", "direction": "before", "max_days": 90})
    fields, error = ground_entity(context(), out)
    assert error is None
    assert (fields["text"], fields["alignment"]) == ("Hemoglobin", "exact")
    assert SOURCE[fields["value"].start : fields["value"].end] == "< 9 g/dL"
    assert SOURCE[fields["temporal"].start : fields["temporal"].end] == "within 3 months"


def test_entity_under_a_wrong_id_moves_to_the_criterion_holding_its_words() -> None:
    start, end = span_of("Type 2\nDiabetes mellitus; diabetes insipidus")
    items = {**context().items, "exc-2": CriterionItem("exc-2", start, end, SOURCE[start:end])}
    slipped = EntityOut(criterion="exc-1", text="diabetes insipidus", type="Condition")
    fields, error = ground_entity(GroundingContext(SOURCE, items), slipped)
    assert error is None
    assert (fields["criterion"], fields["start"]) == ("exc-2", SOURCE.index("diabetes insipidus"))


def test_ground_entity_names_what_failed() -> None:
    invented = EntityOut(criterion="exc-1", text="platelets", type="Measurement")
    message = ground_entity(context(), invented)[1]
    assert message == "entity 'platelets' (criterion exc-1): text not found in the criterion"
    wrong_number = EntityOut(criterion="exc-1", text="Hemoglobin", type="Measurement",
                             value={"comparator": "<", "high": 10, "text": "< 9 g/dL"})
    assert "value number 10 does not occur" in ground_entity(context(), wrong_number)[1]
    unknown = EntityOut(criterion="inc-9", text="Hemoglobin", type="Measurement")
    assert "unknown criterion id" in ground_entity(context(), unknown)[1]


def test_criterion_items_leave_sub_items_out_of_their_parent() -> None:
    text = "Inclusion Criteria:\n1. Any of:\n   a. asthma\n   b. COPD\n"
    parent, a, b = (text.index(s) for s in ("Any of:", "asthma", "COPD"))
    criteria = [
        Criterion(id="inc-1", kind="inclusion", text=text[parent : b + 4], start=parent, end=b + 4),
        Criterion(id="inc-1.1", kind="inclusion", text="asthma", start=a, end=a + 6, parent="inc-1"),
        Criterion(id="inc-1.2", kind="inclusion", text="COPD", start=b, end=b + 4, parent="inc-1"),
    ]
    record = TrialRecord(doc_id="d", source=Source(path="d.txt", format="text", sha256="0" * 64),
                         source_text=text, criteria=criteria)
    assert [(i.id, i.text) for i in criterion_items(record)] == [
        ("inc-1", "Any of:\n   a."), ("inc-1.1", "asthma"), ("inc-1.2", "COPD")]


def test_batches_respect_the_token_budget_and_the_answer_capacity() -> None:
    items = [CriterionItem(f"inc-{n}", 0, 40, "x" * 40) for n in range(1, 8)]  # 11 tokens + 4 each
    assert [len(b) for b in batches(items, budget=1200, max_tokens=1024)] == [4, 3]  # 4 answers fit 1024 tokens
    assert [len(b) for b in batches(items, budget=30, max_tokens=1024)] == [2, 2, 2, 1]
    assert [len(b) for b in batches(items, budget=1, max_tokens=1024)] == [1] * 7  # per-criterion calls
    assert [i.id for b in batches(items, budget=30, max_tokens=1024) for i in b] == [i.id for i in items]
