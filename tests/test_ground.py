"""Grounding: offsets come from the source, never from the model."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from pipeline.extract.llm.answer import EntityOut
from pipeline.extract.llm.prompt import batches, criterion_items
from pipeline.ground import CriterionItem, Grounder, locate, number_occurs, numbers_in, numbers_written
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
    assert numbers_written("NYHA class III or Ⅳ, three times, ++") >= {3, 4, 2}


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


def grounder(*texts: str) -> Grounder:
    items = {}
    for n, text in enumerate(texts, start=1):
        start, end = span_of(text)
        items[f"exc-{n}"] = CriterionItem(f"exc-{n}", start, end, text)
    return Grounder(SOURCE, items)


def entity(text: str, type: str = "Measurement", **extra: object) -> EntityOut:
    return EntityOut.model_validate({"t": text, "y": type, **extra})


HEMOGLOBIN = "Hemoglobin  < 9 g/dL within 3 months"


def test_ground_entity_places_value_and_temporal_spans_and_normalises_them_from_the_text() -> None:
    grounded = grounder(HEMOGLOBIN).entity("exc-1", entity("hemoglobin", v="< 9 g/dL", w="within 3 months"))
    fields = grounded.fields
    assert (grounded.error, grounded.warnings) == (None, [])
    assert (fields["text"], fields["alignment"]) == ("Hemoglobin", "exact")
    value, temporal = fields["value"], fields["temporal"]
    assert SOURCE[value.start : value.end] == "< 9 g/dL"
    assert (value.comparator, value.low, value.high, value.unit) == ("<", None, 9, "g/dL")  # parsed by code
    assert SOURCE[temporal.start : temporal.end] == "within 3 months"
    assert (temporal.direction, temporal.min_days, temporal.max_days) == ("before", 0, 90)


def test_a_normalised_form_whose_numbers_are_in_the_text_wins_one_that_is_not_is_flagged() -> None:
    kept = grounder(HEMOGLOBIN).entity("exc-1", entity("Hemoglobin", v="< 9 g/dL", vn="<= - 9 g/dL"))
    assert kept.fields["value"].comparator == "<=" and kept.warnings == []
    invented = grounder(HEMOGLOBIN).entity("exc-1", entity("Hemoglobin", v="< 9 g/dL", vn="< - 10 g/dL",
                                                           w="within 3 months", wn="before now 0 100"))
    assert (invented.fields["value"].high, invented.fields["temporal"].max_days) == (9, 90)  # the parsed forms
    assert [w.split(":")[1].strip() for w in invented.warnings] == [
        "number 10 is not in the text; kept the parsed form", "number 100 is not in the text; kept the parsed form"]


def test_values_without_digits_and_qualitative_values_are_kept() -> None:
    source = "Inclusion Criteria:\n1. COPD (Stage II or Stage III); HBsAg positive; protein ++\n"
    item = CriterionItem("inc-1", 23, len(source) - 1, source[23:-1])
    g = Grounder(source, {"inc-1": item})
    roman = g.entity("inc-1", entity("COPD", "Condition", v="Stage II or Stage III", vn="between 2 3 GOLD stage"))
    assert (roman.fields["value"].low, roman.fields["value"].high, roman.warnings) == (2, 3, [])
    positive = g.entity("inc-1", entity("HBsAg", v="positive")).fields["value"]
    assert (positive.text, positive.comparator, positive.low, positive.unit) == ("positive", None, None, None)
    grade = g.entity("inc-1", entity("protein", v="++", vn="= 2 2 +"))
    assert (grade.fields["value"].low, grade.warnings) == (2, [])


def test_repeated_words_take_the_next_occurrence_in_reading_order() -> None:
    source = "Exclusion Criteria:\n1. Pregnant and lactating women, women of reproductive age\n"
    start = source.index("Pregnant")
    g = Grounder(source, {"exc-1": CriterionItem("exc-1", start, len(source) - 1, source[start:-1])})
    spans = [g.entity("exc-1", entity(text, "Person")).fields["start"] for text in ("women", "women")]
    assert spans == [source.index("women"), source.index("women", source.index("women") + 1)]


def test_an_occurrence_inside_an_earlier_entity_is_skipped_for_a_later_one() -> None:
    source = "Exclusion Criteria:\n1. allergic constitution, or allergic to drugs\n"
    start = source.index("allergic")
    g = Grounder(source, {"exc-1": CriterionItem("exc-1", start, len(source) - 1, source[start:-1])})
    first = g.entity("exc-1", entity("allergic constitution", "Condition")).fields
    second = g.entity("exc-1", entity("allergic", "Condition")).fields
    assert (first["start"], second["start"]) == (start, source.index("allergic", start + 1))


def test_glued_words_are_found_but_a_real_word_is_never_cut() -> None:
    source = "x moreimmunosuppressants, treatment of infectionwithin 60 days, Previousradiotherapy, 2 years"
    for needle, found in [("immunosuppressants", True), ("infection", True), ("within 60 days", True),
                          ("Previous", True), ("radiotherapy", True), ("year", False), ("therapy", False)]:
        match = locate(source, 0, len(source), needle, threshold=None)
        assert (match is not None) == found, needle
        if match is not None:
            assert match.text == needle


def test_entity_under_a_wrong_id_moves_to_the_criterion_holding_its_words() -> None:
    g = grounder(HEMOGLOBIN, "Type 2\nDiabetes mellitus; diabetes insipidus")
    fields = g.entity("exc-1", entity("diabetes insipidus", "Condition")).fields
    assert (fields["criterion"], fields["start"]) == ("exc-2", SOURCE.index("diabetes insipidus"))


def test_ground_entity_names_what_failed() -> None:
    g = grounder(HEMOGLOBIN)
    assert g.entity("exc-1", entity("platelets")).error == (
        "entity 'platelets' (criterion exc-1): text not found in the criterion")
    assert "value text '< 10 g/dL' not found" in g.entity("exc-1", entity("Hemoglobin", v="< 10 g/dL")).error
    assert "unknown criterion id" in g.entity("inc-9", entity("Hemoglobin")).error


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
    items = [CriterionItem(f"inc-{n}", 0, 40, "x" * 40) for n in range(1, 8)]  # 11 tokens + 4 each, answers 23
    assert [len(b) for b in batches(items, budget=1200, max_tokens=1024)] == [7]
    assert [len(b) for b in batches(items, budget=1200, max_tokens=100)] == [3, 3, 1]  # 3 answers fit 90% of 100
    assert [len(b) for b in batches(items, budget=30, max_tokens=1024)] == [2, 2, 2, 1]
    assert [len(b) for b in batches(items, budget=1, max_tokens=1024)] == [1] * 7  # per-criterion calls
    assert [i.id for b in batches(items, budget=30, max_tokens=1024) for i in b] == [i.id for i in items]
