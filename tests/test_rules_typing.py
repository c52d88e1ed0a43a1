"""Type decisions of the rules backend that follow GUIDELINE 3, each on registry text the lexicon was not
learned from (HINT, ClinicalTrials.gov)."""

from __future__ import annotations

import pytest

from pipeline.extract.rules import load_default_lexicon, load_default_tagger, tag_text
from pipeline.extract.rules.lexicon import tokenize
from pipeline.extract.rules.tagger import _context_type, _merge_tagger


def _types(text: str) -> dict[str, str]:
    """entity text -> type as the shipped backend tags it."""
    return {t.text: t.type for t in tag_text(text, load_default_lexicon(), load_default_tagger())}


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Child-Pugh class C cirrhosis.", "Child-Pugh"),  # hint/NCT00426829
        ("Child-Pugh score of 7 or more", "Child-Pugh score"),
        ("male term baby with gestational age of 37-43 weeks", "gestational age"),  # hint/NCT01434225
    ],
)
def test_an_age_word_in_an_eponym_or_a_measured_age_makes_no_person(text: str, name: str) -> None:
    """'Child' in 'Child-Pugh' names a surgeon, 'gestational age' is measured: neither restricts the population."""
    assert _types(text).get(name) == "Measurement"


def test_age_and_sex_words_still_make_persons() -> None:
    assert _types("Male or female, aged 18-65 years") == {"Male": "Person", "female": "Person", "aged": "Person"}


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("heavy tobacco use, alcohol or drug abuse within", "tobacco use"),  # hint/NCT00608985
        ("Has a history of regular use of tobacco products", "tobacco products"),  # hint/NCT00659191
        ("Life expectancy: At least 3 months", "Life expectancy"),  # hint/NCT00003005
    ],
)
def test_tobacco_use_and_life_expectancy_are_observations(text: str, name: str) -> None:
    """GUIDELINE 3: smoking history and life expectancy are Observations, whatever the words around them."""
    found = _types(text)
    assert any(name in span and typ == "Observation" for span, typ in found.items()), found


def test_tobacco_treatment_and_alcohol_abuse_stay_what_they_are() -> None:
    found = _types("Nicotine replacement therapy; alcohol abuse")
    assert found.get("alcohol abuse") == "Condition"
    assert "Observation" not in found.values()


@pytest.mark.parametrize(
    "text",
    [
        "PVR ≥ 400 dynes.sec.cm-5 (5 Wood units)",  # hint/NCT02725372
        "weekly consumption > 21 units of alcohol",  # hint/NCT00428415
    ],
)
def test_a_unit_alone_is_no_care_setting(text: str) -> None:
    assert "Visit" not in _types(text).values()


def test_the_lexicon_fills_what_the_tagger_left_except_measurements() -> None:
    """Where the tagger found nothing, lexicon spans are added, but not Measurement phrases: the tagger reads
    them as features and on Chia cross-validation the ones it left were more often no Measurement."""
    found = [(0, 1, "Drug")]
    candidates = [(0, 2, "Drug"), (2, 3, "Condition"), (3, 4, "Measurement")]
    tokens = tokenize("aspirin daily diabetes HbA1c")
    assert _merge_tagger(found, candidates, tokens) == [(0, 1, "Drug"), (2, 3, "Condition")]


def test_a_tagger_name_loses_the_function_words_it_ends_in() -> None:
    tokens = tokenize("body mass index of and obesity")
    assert _merge_tagger([(0, 5, "Measurement")], [], tokens) == [(0, 3, "Measurement")]
    assert _merge_tagger([(3, 5, "Condition")], [(5, 6, "Condition")], tokens) == [(5, 6, "Condition")]


@pytest.mark.parametrize(
    ("text", "name", "typ"),
    [
        ("Able to read and speak English or Spanish", "speak English", "Observation"),  # hint/NCT00278434
        # hint/NCT00316186
        ("total abstinence from sexual intercourse during the course", "sexual intercourse", "Observation"),
        ("an expected survival of at least 3 months", "expected survival", "Observation"),  # hint/NCT00426127
        ("treatment in an emergency room or urgent care setting", "emergency room", "Visit"),  # NCT00621504
        ("in the first 48 hours of the PICU admission; AND", "PICU", "Visit"),  # hint/NCT00395161
        ("who is scheduled for in-patient hospitalization, in", "in-patient", "Visit"),  # hint/NCT00684866
        ("will be studied at Childrens Hospital Los Angeles", "Childrens Hospital", "Visit"),  # hint/NCT01033227
    ],
)
def test_language_behaviour_survival_and_care_settings_are_named_by_their_shape(text: str, name: str, typ: str) -> None:
    """GUIDELINE 3: language, sexual behaviour and expected survival are Observations, care settings Visits,
    found by the phrase's shape when the lexicon does not know it."""
    found = _types(text)
    assert any(name in span and found[span] == typ for span in found), found


@pytest.mark.parametrize(
    "text",
    [
        "New York Hospital Association (NYHA) class III or IV",  # hint/NCT00117351 (sic): a scale, not a place
        "Pain in patients with diabetes",
    ],
)
def test_no_care_setting_in_a_scale_name_or_in_patients(text: str) -> None:
    assert "Visit" not in _types(text).values()


def test_a_coordinated_qualifier_is_no_entity_but_a_coordinated_body_system_is() -> None:
    """'acute or chronic hepatitis': 'acute' grades the disease (Chia Qualifier); 'renal or hepatic disease':
    'renal' starts Chia's discontinuous 'renal ... disease'."""
    assert "acute" not in _types("Subjects with acute or chronic hepatitis")
    assert "renal" in _types("History of renal or hepatic disease")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("HIV positive", "HIV"),  # hint/NCT00074165: the result is the value, not part of the name
        ("Subject is known to be positive for HIV.", "HIV"),  # hint/NCT00485719
    ],
)
def test_a_name_beside_a_qualitative_result_is_the_test(text: str, name: str) -> None:
    """GUIDELINE 3: 'positive for PPD' -> Measurement 'PPD' with the value 'positive'."""
    (found,) = [t for t in tag_text(text, load_default_lexicon(), load_default_tagger()) if t.text == name]
    assert found.type == "Measurement" and found.value is not None and found.value.text == "positive"


def test_a_disease_named_without_a_result_stays_a_condition() -> None:
    assert _types("Known HIV infection") == {"HIV infection": "Condition"}


@pytest.mark.parametrize("name", ["cardiac stent", "joint prosthesis", "implantable cardioverter defibrillator"])
def test_a_name_whose_head_is_a_device_is_a_device_whatever_the_lexicon_typed(name: str) -> None:
    """GUIDELINE 3: implanted or used devices; on Chia CV the lexicon and tagger typed these Condition or
    Procedure ('cardiac stent', 'joint prosthesis'), as the head decides 'renal biopsy' is a Procedure."""
    for typed in ("Condition", "Procedure", "Drug"):
        assert _context_type(tokenize(name), typed, None) == "Device"
    assert _context_type(tokenize("stent thrombosis"), "Condition", None) == "Condition"
