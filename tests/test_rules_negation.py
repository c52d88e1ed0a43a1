"""Negation cues and scope of the rules backend, on real criteria text."""

from __future__ import annotations

import pytest

from pipeline.extract.rules.negation import find_negations, is_negated

CASES = [
    # (source text, phrase, negated?)
    # chia-dev: "free of benzodiazepines for 4 weeks"
    ("free of benzodiazepines for 4 weeks, or 2) has signs or symptoms of", "benzodiazepines", True),
    ("free of benzodiazepines for 4 weeks, or 2) has signs or symptoms of", "symptoms", False),
    # chia-dev: "no history of known hypersensitivity or idiosyncratic reaction to the study drug"
    ("no history of known hypersensitivity or idiosyncratic reaction", "hypersensitivity", True),
    ("no history of known hypersensitivity or idiosyncratic reaction", "idiosyncratic reaction", True),
    # chia-dev: "walk ... without assistive devices"
    ("able to walk without assistive devices", "assistive devices", True),
    ("able to walk without assistive devices", "walk", False),
    # chia-dev: "absence of the use of exogenous hormone(s), have a self-reported regular"
    ("absence of the use of exogenous hormone(s), have a self-reported regular", "exogenous hormone", True),
    # hint/NCT00002633: "no evidence of disease on CT or bone scan"
    ("(D0.5; no evidence of disease on CT or bone scan after", "disease", True),
    ("(D0.5; no evidence of disease on CT or bone scan after", "D0.5", False),
    # seeds/001: "there were no new immunosuppressants"
    ("and/or there were no new immunosuppressants added", "immunosuppressants", True),
    # seeds/003: "Male or non-pregnant、non-nursing female." ('non-' on a state, GUIDELINE section 7)
    ("Male or non-pregnant、non-nursing female.", "pregnant", True),
    ("Male or non-pregnant、non-nursing female.", "nursing", True),
    ("Male or non-pregnant、non-nursing female.", "female", False),
    ("Male or non-pregnant、non-nursing female.", "Male", False),
    # hint/NCT00000614 style list with an exception: GUIDELINE section 7 ("except for ... carcinoma" negated)
    ("No prior malignancy except for adequately treated basal cell carcinoma", "basal cell carcinoma", True),
    # chia-dev/NCT00050349_inc: "(other than bone)" - Chia Negation "other than"
    ("at least one measurable lesion (other than bone) that has", "bone", True),
    ("at least one measurable lesion (other than bone) that has", "measurable lesion", False),
    # seeds/000: "including but not limited to rheumatoid arthritis" is not a negation
    ("Other rheumatoid immune diseases: including but not limited to rheumatoid arthritis,", "rheumatoid arthritis",
     False),
    # seeds/004: "Hepatitis Cantibody positive" - positive is not a cue
    ("Hepatitis B surface antigen positive.", "Hepatitis B surface antigen", False),
    # hint: "HIV negative": a test result is a value, not a negation (GUIDELINE section 5 and 7)
    ("Patients must be HIV negative", "HIV", False),
    ("negative for hepatitis B surface antigen", "hepatitis B surface antigen", False),
    # post-cue: chia-dev style "metastases are absent"
    ("brain metastases are absent", "brain metastases", True),
    # seeds/004: "Unable to swallow" style cue (GUIDELINE section 7, NCT05463224)
    ("Unable to swallow tablets", "swallow tablets", True),
    # chia-dev/NCT00050349_inc: "Female patients must have a negative serum pregnancy test at screening"
    # ('negative' before a test is a result, not a negation of the test)
    ("must have a negative serum pregnancy test at screening", "serum pregnancy test", False),
    # seeds/003: "Patients who have not been vaccinated" style: 'not been' is a cue (chia-dev Negation "not been")
    ("that has either not been previously irradiated or if previously", "irradiated", True),
    # scope ends at ';': seeds/001 "no ...; Hemoglobin"
    ("no active infection; hemoglobin < 80g/L", "hemoglobin", False),
]  # fmt: skip


@pytest.mark.parametrize(("text", "phrase", "negated"), CASES)
def test_negation_scope(text: str, phrase: str, negated: bool) -> None:
    start = text.index(phrase)
    assert is_negated(start, start + len(phrase), find_negations(text)) is negated


def test_cue_offsets_point_at_the_cue() -> None:
    text = "no history of known hypersensitivity"
    (scope,) = find_negations(text)
    assert text[scope.cue_start : scope.cue_end].startswith("no history of")
    assert text[scope.start : scope.end] == "hypersensitivity"
