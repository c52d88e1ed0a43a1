"""Time windows of the rules backend, normalised to days and anchors, on real criteria text."""

from __future__ import annotations

import pytest

from pipeline.extract.rules.temporal import find_temporals

CASES = [
    # (source text, temporal text, direction, anchor, min_days, max_days)
    # seeds/003: "Herpes zoster lesions within 90 days prior to screening."
    ("Herpes zoster lesions within 90 days\nprior to screening.", "within 90 days\nprior to screening", "before",
     "screening", 0, 90),
    # seeds/003: "Major surgery within 8 weeks prior to Screening"
    ("13. Major surgery within 8 weeks prior to Screening or planned", "within 8 weeks prior to Screening", "before",
     "screening", 0, 56),
    # seeds/003: "Immunization with a live/attenuated vaccine within 4 weeks prior to Screening."
    ("a live/attenuated vaccine within 4 weeks prior to Screening.", "within 4 weeks prior to Screening", "before",
     "screening", 0, 28),
    # seeds/003: "abuse within one year prior to signing the informed consent form"
    ("chemical abuse within one year prior to signing the\ninformed consent form.",
     "within one year prior to signing the\ninformed consent", "before", "consent", 0, 365),
    # seeds/003: "History of malignant tumor within 5 years prior to screening"
    ("History of malignant tumor within 5 years prior to screening (stable", "within 5 years prior to screening",
     "before", "screening", 0, 1825),
    # seeds/003: "biologics for more than 3 months."
    ("immunosuppressive agents or biologics for more than 3 months.", "for more than 3 months", "during", "now",
     90, None),
    # seeds/001: "Received intravenous glucocorticoid (> 1 mg/kg/d) within 4 weeks;"
    ("glucocorticoid (> 1 mg/kg/d) within 4 weeks;", "within 4 weeks", "before", "now", 0, 28),
    # seeds/001: "infection ... 2 months before the first treatment"
    ("had an infection 2 months before the first treatment", "2 months before the first treatment", "before",
     "first_dose", 0, 60),
    # seeds/000: "for at least 3 months"
    ("immunosuppressive therapy for at\nleast 3 months", "for at\nleast 3 months", "during", "now", 90, None),
    # seeds/000: "treated for active TB within the previous 3 years"
    ("treated for active TB within the previous 3\nyears", "within the previous 3\nyears", "before", "now", 0, 1095),
    # seeds/004: "Within 10 days before the first administration of Belimumab"
    ("Within 10 days before the first administration of Belimumab", "Within 10 days before the first administration",
     "before", "first_dose", 0, 10),
    # seeds/004: "antibiotics ... within 30 days of Day 0."
    ("anti-parasitic agents)within 30 days of Day 0.", "within 30 days of Day 0", "before", "first_dose", 0, 30),
    # seeds/004: "Participate in other clinical trials within 6 months"
    ("Participate in other clinical trials within 6 months", "within 6 months", "before", "now", 0, 180),
    # chia-dev/NCT00050349_inc: "stable dose for 30 days prior to study entry"
    ("on a stable dose for 30 days prior to study entry", "for 30 days prior to study entry", "during",
     "enrollment", 30, None),
    # chia-dev (Temporal "at least 6 months before enrollment")
    ("diagnosed at least 6 months before enrollment", "at least 6 months before enrollment", "before",
     "enrollment", 180, None),
    # chia-dev (Temporal "within the previous seven days")
    ("antibiotics within the previous seven days", "within the previous seven days", "before", "now", 0, 7),
    # chia-dev (Temporal "in past four months")
    ("hospitalised in past four months", "in past four months", "before", "now", 0, 120),
    # hint/NCT00000614: "within the last two years before the trial"
    ("anticoagulation therapy within the last two years before the trial", "within the last two years", "before",
     "now", 0, 730),
    # hint/NCT00002633: "Diagnosis made within the past 6 months"
    ("Diagnosis made within the past 6 months", "within the past 6 months", "before", "now", 0, 180),
    # chia-dev (Temporal "at screening")
    ("negative serum pregnancy test at screening.", "at screening", "during", "screening", None, None),
    # seeds/001: "Agree to adopt effective contraceptive measures during the study period"
    ("contraceptive measures during the study period (women", "during the study period", "during", "study", None, None),
    # seeds/001: "within 4 weeks before joining the group"
    ("0.5mg/kg/d within\n4 weeks before joining the group, and/or", "within\n4 weeks before joining the group",
     "before", "enrollment", 0, 28),
    # GUIDELINE.md section 6: "at least two weeks after the chemotherapy" (the chemotherapy is over)
    ("at least two weeks after the chemotherapy", "at least two weeks after", "before", "now", 14, None),
    # hint: "more than 6 months ago"
    ("myocardial infarction more than 6 months ago", "more than 6 months ago", "before", "now", 180, None),
    # seeds/001: "tuberculosis in the past;" and "in the past 3 years"
    ("active tuberculosis in the past 3 years;", "in the past 3 years", "before", "now", 0, 1095),
    # chia-dev/NCT02360631_exc: "Major depressive disorder in the last year requiring treatment" (no number)
    ("Major depressive disorder in the last year requiring", "in the last year", "before", "now", 0, 365),
    # chia-dev/NCT01978028_exc: "(current or planned within the next 6 months)"
    ("renal dialysis (current or planned within the next 6 months).", "within the next 6 months", "after", "now",
     0, 180),
    # chia-dev/NCT00527826_exc: "from Visit 1 and for the duration of the study"
    ("from Visit 1 and for the duration of the study with any", "for the duration of the study", "during",
     "study", None, None),
    # chia-dev/NCT01581749_exc: "hormone ablation for 2 months prior to treatment or during treatment"
    ("prior to treatment or during treatment", "during treatment", "during", "first_dose", None, None),
    # chia-dev/NCT00917891_inc: "as determined by a HIV rapid test at time of enrollment" (no 'the')
    ("as determined by a HIV rapid test at time of enrollment", "at time of enrollment", "during", "enrollment",
     None, None),
    # chia-dev/NCT02396420_inc: "baseline PSA < 4.0ng/mL"
    ("meets ONE of the following criteria: baseline PSA < 4.0ng/mL", "baseline", "during", "baseline", None, None),
    # chia-dev/NCT02876484_exc: "HbA1c > 48 mmol/mol 3 months after RYGB." (an event the anchor list lacks)
    ("HbA1c > 48 mmol/mol 3 months after RYGB.", "3 months after RYGB", "after", "rygb", 0, 90),
    # chia-dev/NCT02748330_inc: "300 to 600 mg Clopidogrel loading dose before PCI."
    ("600 mg Clopidogrel loading dose before PCI.", "before PCI", "before", "pci", None, None),
    # chia-dev/NCT02802644_exc: "(repeated chest pain or dyspnea after revascularization)"
    ("(repeated chest pain or dyspnea after revascularization)", "after revascularization", "after",
     "revascularization", None, None),
    # chia-dev (Temporal "pre-enrollment", 3 times)
    ("a pre-enrollment biopsy", "pre-enrollment", "before", "enrollment", None, None),
]  # fmt: skip


@pytest.mark.parametrize(("text", "window", "direction", "anchor", "low", "high"), CASES)
def test_time_window(text: str, window: str, direction: str, anchor: str, low: float, high: float) -> None:
    found = [t for t in find_temporals(text) if t.text == window]
    assert found, f"no window {window!r} in {[t.text for t in find_temporals(text)]}"
    temporal = found[0]
    assert text[temporal.start : temporal.end] == window
    assert (temporal.direction, temporal.anchor, temporal.min_days, temporal.max_days) == (direction, anchor, low, high)


@pytest.mark.parametrize(
    ("text", "cue", "direction"),
    [
        ("History of malignant neoplasm", "History of", "before"),  # seeds/004
        ("Previously treated with rituximab", "Previously", "before"),  # seeds/004
        ("Current uncontrolled renal disease", "Current", "during"),  # seeds/003
        ("History or evidence of a stroke", "History", "before"),  # chia-dev/NCT02996916_exc: 'history' alone
        ("Major bleeding history within prior 2 months", "history", "before"),  # chia-dev/NCT02701881_exc
        ("undergoing elective posterior spine surgery", "undergoing", "during"),  # chia-dev/NCT02527512_exc
    ],
)
def test_history_and_current_cues(text: str, cue: str, direction: str) -> None:
    first = find_temporals(text)[0]
    got = (first.text, first.direction, first.anchor, first.min_days, first.max_days)
    assert got == (cue, direction, "now", None, None)


def test_following_criteria_and_before_any_name_no_event() -> None:
    # seeds/001 style lead-ins: "the following criteria" is no time; "before any" names no event
    assert find_temporals("Patients meeting the following criteria are excluded") == []
    assert find_temporals("signed before any study procedures") == []


def test_no_window_without_a_time_phrase() -> None:
    # seeds/001: "hemoglobin < 80g/L" has no time in it
    assert find_temporals("hemoglobin < 80g/L, E. platelet count < 60.") == []
