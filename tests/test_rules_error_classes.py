"""The error classes of issue 16, each fixed in general: what a new user saw on HINT trials."""

from __future__ import annotations

from itertools import islice

import pytest

from pipeline.extract.rules import load_default_lexicon, load_default_tagger, tag_text, tag_texts
from pipeline.extract.rules.lexicon import Lexicon, learn_lexicon
from pipeline.extract.rules.tagger import _balanced
from pipeline.extract.rules.temporal import find_temporals
from pipeline.ingest import Document, iter_documents
from pipeline.schema import TrialRecord
from pipeline.segment import segment
from tests.conftest import SEEDS, shared_path


def _hint_records(count: int) -> list[TrialRecord]:
    documents = (d for d in iter_documents([shared_path("hint/hint-trials.jsonl")]) if isinstance(d, Document))
    return [segment(d) for d in islice(documents, count)]


def _found(text: str) -> dict[str, tuple[str, str | None]]:
    """entity text -> (type, value text) as the shipped backend tags it."""
    return {
        t.text: (t.type, t.value.text if t.value else None)
        for t in tag_text(text, load_default_lexicon(), load_default_tagger())
    }


def test_an_age_range_attaches_to_the_age_word_not_to_the_sex_words() -> None:
    found = _found("Male or female, aged 18-65 years")
    assert found["aged"] == ("Person", "18-65 years")
    assert found["Male"] == ("Person", None) and found["female"] == ("Person", None)


def test_a_sex_word_alone_still_carries_the_age_range() -> None:
    assert _found("Women 18 to 45 years")["Women"] == ("Person", "18 to 45 years")


@pytest.mark.parametrize(
    ("text", "person", "value"),
    [  # hint NCT00365365 "Women >/= 18 years of age."; Chia: Person "age" with Value "at least 18 years" (64 of 67)
        ("Women >/= 18 years of age.", "age", ">/= 18 years of age"),
        ("Patients must be at least 18 years of age", "age", "at least 18 years of age"),
        ("Men and women 18 years of age or older", "age", "18 years of age or older"),
    ],
)
def test_the_age_word_inside_its_value_carries_it(text: str, person: str, value: str) -> None:
    assert _found(text)[person] == ("Person", value)


def test_a_value_taken_by_the_name_before_it_is_not_the_next_names_when_that_has_its_own() -> None:
    """hint NCT02622932: life expectancy took the ECOG range right before it, not its own duration."""
    found = _found("ECOG PS:0-1,Life expectancy of more than 3 months")
    assert found == {"ECOG PS": ("Measurement", "0-1"), "Life expectancy": ("Observation", "more than 3 months")}
    assert _found("ALT and AST ≤ 2.5 x ULN")["AST"] == ("Measurement", "≤ 2.5 x ULN")


def test_a_value_on_the_wrapped_line_after_the_name_is_its_value() -> None:
    """hint NCT01368263: HINT wraps criteria at 90 columns and indents by 13; the value after the wrap is as
    near as on one line, and a wrapped line starting with a comparator or a bracket is no new clause."""
    ecog = "Patient must have an Eastern Cooperative Oncology Group (ECOG) performance status of\n             =< 2"
    assert _found(ecog) == {"Eastern Cooperative Oncology Group (ECOG) performance status": ("Measurement", "=< 2")}
    liver = ("Aspartate aminotransferase (AST) (serum glutamic oxaloacetic transaminase\n             [SGOT])/alanine "
             "aminotransferase (ALT) (serum glutamic pyruvate transaminase [SGPT])\n             =< 3.0 X "
             "institutional upper limit of normal (ULN)")  # fmt: skip
    found = _found(liver)
    assert set(found) == {"Aspartate aminotransferase", "serum glutamic oxaloacetic transaminase\n             [SGOT]",
                          "alanine aminotransferase", "serum glutamic pyruvate transaminase [SGPT]"}  # fmt: skip
    assert {value for _, value in found.values()} == {"=< 3.0 X institutional upper limit of normal (ULN)"}


@pytest.mark.parametrize(
    ("text", "span", "paired"),
    [
        ("white blood cell (WBC) count", "WBC) count", "WBC"),  # closes one it did not open: ends before it
        ("HbA1c (glycosylated haemoglobin) 7%", "HbA1c (glycosylated haemoglobin", "HbA1c (glycosylated haemoglobin)"),
        ("alanine aminotransferase (ALT) and AST", "alanine aminotransferase (ALT", "alanine aminotransferase (ALT)"),
        ("HbA1c (as measured by the central laboratory on the day of screening) 7%", "HbA1c (as", "HbA1c"),
        ("ductal carcinoma in situ (DCIS", "ductal carcinoma in situ (DCIS", "ductal carcinoma in situ"),
    ],
)
def test_a_name_holds_no_half_bracket(text: str, span: str, paired: str) -> None:
    start = text.index(span)
    begin, end, _ = _balanced(text, (start, start + len(span), "Condition"))
    assert text[begin:end] == paired


def test_no_entity_holds_half_a_bracket_on_registry_text() -> None:
    """hint NCT01368263 and NCT00365365 gave 'alanine aminotransferase (ALT' and 'transaminase [SGPT])'."""
    lexicon, tagger = load_default_lexicon(), load_default_tagger()
    documents = [path.read_text(encoding="utf-8").splitlines() for path in sorted(SEEDS.glob("*.txt"))]
    documents += [[c.text for c in record.criteria] for record in _hint_records(100)]
    names = [t.text for texts in documents for found in tag_texts(texts, lexicon, tagger) for t in found]
    assert len(names) > 5_000
    assert [n for n in names if n.count("(") != n.count(")") or n.count("[") != n.count("]")] == []


def test_a_multiplication_sign_is_no_measurement() -> None:
    """hint NCT01900327: '≥ 3.5 x 109/ml' (10^9 typed as 109) made 'x' a Measurement carrying the value."""
    found = _found("White blood cell count ≥ 3.5 x 109/ml, platelet count ≥ 100 x 109/ml")
    assert found == {"White blood cell count": ("Measurement", "≥ 3.5"), "platelet count": ("Measurement", "≥ 100")}


def test_age_and_old_are_one_person() -> None:
    found = _found("Age 18 years old or older")
    assert found == {"Age": ("Person", "18 years old or older")}


@pytest.mark.parametrize(
    ("text", "not_entities"),
    [
        ("Histologically confirmed renal cell carcinoma", {"Histologically"}),
        ("Surgically sterile women", {"Surgically"}),
        ("Disease that is chronic", {"chronic"}),
        ("History of renal", {"renal"}),
        # hint NCT01368263: body sites alone (Chia has no anatomy type)
        ("treated cervical carcinoma in situ, lobular carcinoma in situ of the breast, contralateral ductal carcinoma",
         {"breast"}),
        ("(not direct skin invasion by tumor or peau d'orange without erythema)", {"skin"}),
        # hint NCT02275416: an emphasised stop word
        ("have had stable disease for more than two month and NOT requiring steroids may however be included",
         {"NOT"}),
        ("cores or FNA of lymph node are acceptable", {"lymph node"}),
    ],
)
def test_adverbs_and_lone_qualifiers_are_no_entities(text: str, not_entities: set[str]) -> None:
    assert not not_entities & set(_found(text))


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("drugs within 4 weeks prior to study screening", ("before", "screening", 0, 28)),
        ("Pre-operative hemoglobin > 8 g/dL", ("before", "surgery", None, None)),
        ("postoperative infection", ("after", "surgery", None, None)),
        ("pre-treatment granulocyte count", ("before", "first_dose", None, None)),
        ("acetaminophen within 24 h of surgery", ("before", "surgery", 0, 1)),
        ("Malignancy within the last 5y", ("before", "now", 0, 1825)),
        # hint NCT02655952 (the window was 'since the patient', anchored to 'patient')
        ("4 weeks must have elapsed since the patient has received any treatment", ("before", "now", 28, None)),
        ("At least 28 days must have passed from the last dose of chemotherapy", ("before", "now", 28, None)),
    ],
)
def test_time_windows_and_their_anchors(text: str, window: tuple) -> None:
    (found,) = find_temporals(text)
    assert (found.direction, found.anchor, found.min_days, found.max_days) == window


def test_a_body_system_coordinated_with_a_name_is_kept_as_chia_annotates_it() -> None:
    """'renal or hepatic disease': Chia annotates a discontinuous 'renal ... disease' per conjunct."""
    assert set(_found("History of renal or hepatic disease")) == {"renal", "hepatic disease"}


@pytest.mark.parametrize(
    ("text", "learned", "name", "time"),
    [  # chia-dev/NCT01000155_exc: Chia's span is 'hepatitis B', with 'active' annotated apart
        ("Known positive status for HIV, active hepatitis B or hepatitis C", "active hepatitis B", "hepatitis B", None),
        ("History of current hepatitis B or hepatitis C", "current hepatitis B", "hepatitis B", "current"),
    ],
)
def test_time_and_status_words_a_learned_name_starts_with_are_cut_off(
    text: str, learned: str, name: str, time: str | None
) -> None:
    """A lexicon (or tagger) that learned a name with its cue: GUIDELINE 4, no cue words in a span; a time word
    becomes the name's time; 'active' is a status (Chia: a Qualifier 70 times, a Temporal 27), no time."""
    start = text.index(learned)
    lexicon = learn_lexicon([(text, [(start, start + len(learned), "Condition")])])
    (tagged,) = [t for t in tag_text(text, lexicon) if name in t.text]
    assert (tagged.text, tagged.type) == (name, "Condition")
    assert (tagged.temporal.text if tagged.temporal else None) == time


@pytest.mark.parametrize(
    ("text", "conjuncts", "named"),
    [
        # chia-dev/NCT03228498_exc
        ("diagnosed advanced heart, kidney or liver failure", ["heart", "kidney"], "liver failure"),
        ("Severe renal or hepatic insufficiency", ["renal"], "hepatic insufficiency"),  # hint/NCT00372216
    ],
)
def test_conjuncts_sharing_a_head_start_an_entity_each(text: str, conjuncts: list[str], named: str) -> None:
    """Chia annotates 'kidney ... failure' as a discontinuous Condition: its one-piece start is 'kidney'. A
    lexicon that knows only the last name, so the rule alone finds the conjuncts."""
    start = text.index(named)
    lexicon = learn_lexicon([(text, [(start, start + len(named), "Condition")])])
    found = {t.text: t.type for t in tag_text(text, lexicon)}
    assert found == {word: "Condition" for word in [*conjuncts, named]}


def test_qualifiers_and_abbreviations_are_no_conjuncts() -> None:
    found = _found("moderate or severe renal impairment; HIV or HCV infection")
    assert "moderate" not in found and "severe" not in found


def test_a_name_with_its_abbreviation_is_the_name_and_a_scale_keeps_its_inner_abbreviation() -> None:
    # hint/NCT00382798: "A body mass index (BMI) of ≥ 18 kg/m2"; GUIDELINE 4: the name only
    assert _found("A body mass index (BMI) of ≥ 18 kg/m2") == {"body mass index": ("Measurement", "≥ 18 kg/m2")}
    # hint/NCT00308269: one entity for the named scale with its abbreviation, carrying the value once
    found = _found("Eastern Cooperative Oncology Group (ECOG) performance status of 0-2")
    assert found == {"Eastern Cooperative Oncology Group (ECOG) performance status": ("Measurement", "0-2")}


def test_investigational_drug_within_30_days_prior_to_study_screening() -> None:
    # hint/NCT00268593: the drug is an entity, the window is anchored to screening (not 'now')
    text = (
        "Participation in another clinical\n             trial with any investigational drug within 30 days prior"
        " to study screening"
    )
    (drug,) = [t for t in tag_text(text, load_default_lexicon(), load_default_tagger()) if t.type == "Drug"]
    assert drug.text == "investigational drug" and drug.temporal is not None
    assert (drug.temporal.direction, drug.temporal.anchor, drug.temporal.max_days) == ("before", "screening", 30)


def _windows(text: str) -> dict[str, str | None]:
    """entity text -> its time window's text, as the shipped backend tags it."""
    tagged = tag_text(text, load_default_lexicon(), load_default_tagger())
    return {t.text: t.temporal.text if t.temporal else None for t in tagged}


def test_a_sex_word_takes_no_time_window_and_an_age_keeps_its_own() -> None:
    """hint NCT00050167: the window places the contraception, not the women; it stays on a name beside them."""
    windows = _windows(
        "Women of childbearing potential who will not use a reliable and appropriate\n"
        "             contraceptive method during the study are not eligible."
    )
    assert windows["Women"] is None
    assert "during the study" in windows.values()
    assert _windows("Age 18 to 75 years at the time of signing informed consent.")["Age"] == (
        "at the time of signing informed consent"
    )


@pytest.mark.parametrize(
    ("text", "not_entities"),
    [  # hint NCT00836628, NCT02912468, NCT00698581
        ("Hemoglobin greater than or equal to 8.0 gm/dL (may receive RBC transfusions)", {"gm"}),
        ("autoimmune disease (eg, rheumatoid arthritis, inflammatory bowel disease)", {"eg"}),
        ("Subjects having at least 2 but not exceeding 40 partial onset seizures", {"but", "having"}),
    ],
)
def test_no_entity_in_a_unit_nor_a_function_word_alone(text: str, not_entities: set[str]) -> None:
    found = _found(text)
    assert not_entities.isdisjoint(found)
    assert len(found) >= 1  # the names around them are still found


def test_the_unit_of_a_value_keeps_its_value() -> None:
    assert _found("Hemoglobin greater than or equal to 8.0 gm/dL")["Hemoglobin"] == (
        "Measurement", "greater than or equal to 8.0 gm/dL"
    )  # fmt: skip


def test_an_abbreviation_learned_in_capitals_is_a_word_in_lower_case() -> None:
    """Chia annotates 'MET' (the gene) as a Drug; hint NCT00357305 'if all of the following criteria are met'."""
    text = "MET amplification or MET exon 14 mutation; criteria met"
    lexicon = learn_lexicon([(text, [(0, 3, "Drug"), (21, 24, "Drug")])])
    assert "met" in lexicon.upper
    assert [(t.type, t.text) for t in tag_text("MET amplification; criteria are met", lexicon)] == [("Drug", "MET")]
    shipped = load_default_lexicon()
    assert "met" in shipped.upper and "hgb" in shipped.phrases and "hgb" not in shipped.upper  # Chia: 'Hgb'
    assert "met" not in _found("if all of the following criteria are met:")


def test_the_abbreviation_table_survives_a_save_and_load(tmp_path) -> None:
    lexicon = learn_lexicon([("MET and ALK", [(0, 3, "Drug"), (8, 11, "Drug")])])
    lexicon.save(tmp_path / "lexicon.tsv", "test")
    assert Lexicon.load(tmp_path / "lexicon.tsv").upper == lexicon.upper == {"met", "alk"}


@pytest.mark.parametrize(
    ("text", "not_entities"),
    [  # hint NCT01104779, NCT02951052, NCT03237481, NCT01404390, NCT01496534
        ("Schizophrenia (paranoid type, disorganized type, catatonic type or undifferentiated type)", {"type"}),
        ("In the event that recent biopsy or imaging data is not available", {"event"}),
        ("Use of anticoagulants within 7 days before the scheduled surgery (3 days for long-acting).", {"acting"}),
        ("Patients must have recovered from the toxic effects of the previous treatment", {"toxic"}),
        ("Fertile males not willing to use contraception", {"willing to use", "willing"}),
        ("Subjects with historical or current evidence of clinical hepatitis", {"historical"}),  # NCT01777334
        ("Taking a contraindicated medication described in section 6.2.8", {"section"}),  # NCT00216437
    ],
)
def test_general_nouns_modifiers_and_willingness_name_nothing_alone(text: str, not_entities: set[str]) -> None:
    found = _found(text)
    assert not_entities.isdisjoint(found)
    assert found  # the names beside them stay


def test_what_a_patient_is_willing_to_use_is_still_named() -> None:
    """GUIDELINE 2: the willingness is no entity, the contraception is (gold NCT01700179)."""
    assert _found("Fertile males not willing to use contraception")["contraception"][0] == "Procedure"


@pytest.mark.parametrize(
    ("text", "kept"),
    [  # GUIDELINE 2 (consent, compliance, other trials: no entity); hint NCT00717990, NCT02831764
        ("Participation in another clinical study within 30 days prior to screening", set()),
        ("Able to give written informed consent", set()),
        ("Psychiatric illness or social situation that would preclude study compliance", {"Psychiatric illness"}),
        ("Known history of poor compliance with medical treatment", {"medical treatment"}),
        ("Received an investigational study drug within 30 days", {"study drug"}),
    ],
)
def test_consent_compliance_and_other_studies_name_nothing(text: str, kept: set[str]) -> None:
    found = _found(text)
    assert kept <= set(found)
    assert not any(word in name.lower() for name in found for word in ("consent", "complian", "particip", "preclud"))


def test_the_length_of_a_time_window_is_no_value() -> None:
    """hint NCT03667053: 'male' carried the duration of the diabetes as its value."""
    tagged = {t.text: t for t in tag_text(
        "Female or male patients with T1DM for at least 1 year", load_default_lexicon(), load_default_tagger()
    )}  # fmt: skip
    assert tagged["male"].value is None
    assert tagged["T1DM"].temporal is not None and tagged["T1DM"].temporal.text == "for at least 1 year"
    assert _found("Life expectancy of at least 3 months")["Life expectancy"] == ("Observation", "at least 3 months")
    survival = "ECOG performance status score of 0-2 and be expected to survive for at least 12 weeks"  # NCT06945705
    assert _found(survival)["survive"] == ("Observation", "at least 12 weeks")  # a survival's length is its value


def test_a_development_code_is_a_drug() -> None:
    """hint NCT00715403: 'therapy with BIBF 1120' gave a Condition; the tagger typed 106 of 506 such codes otherwise."""
    assert _found("Presence of toxicity > grade 2 from previous therapy with BIBF 1120")["BIBF 1120"][0] == "Drug"
    assert {name: typ for name, (typ, _) in _found("Prior treatment with OSI-774 or AMN107").items()} == {
        "OSI-774": "Drug", "AMN107": "Drug"
    }  # fmt: skip
