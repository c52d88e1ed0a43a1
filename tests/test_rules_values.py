"""Values of the rules backend: comparators, ranges, ULN multiples and units, on real criteria text."""

from __future__ import annotations

import pytest

from pipeline.extract.rules.values import find_values

CASES = [
    # (source text, value text, comparator, low, high, unit)
    # seeds/001: "hemoglobin < 80g/L"
    ("(4). hemoglobin < 80g/L, E. platelet count < 60.", "< 80g/L", "<", None, 80, "g/L"),
    # seeds/001: "creatinine clearance rate ≤30 ml/min"
    ("renal insufficiency (creatinine clearance rate ≤30 ml/min)", "≤30 ml/min", "<=", None, 30, "mL/min"),
    # seeds/001: "less than 0.5mg/kg/d"
    ("was less than 0.5mg/kg/d within", "less than 0.5mg/kg/d", "<", None, 0.5, "mg/kg/day"),
    # seeds/001: "the lowest level is 1.3 x upper limit normal"
    ("the lowest level is 1.3 x upper limit normal", "1.3 x upper limit normal", "=", 1.3, 1.3, "x ULN"),
    # seeds/001: "Age 18-75 years old"
    ("Age 18-75 years old (including 18 and 75 years old);", "18-75 years old", "between", 18, 75, "years"),
    # seeds/001: "≥3cm on the 10cm VAS scale"
    ("(MDAAT) was ≥3cm on the 10cm VAS scale", "≥3cm", ">=", 3, None, "cm"),
    # seeds/000: "iMACS <20%"
    ("iMACS <20%, or more than 2 parameters", "<20%", "<", None, 20, "%"),
    # seeds/000: "the dosage of glucocorticoids was <1mg/kg/day"
    ("the dosage of glucocorticoids was <1mg/kg/day", "<1mg/kg/day", "<", None, 1, "mg/kg/day"),
    # seeds/003: "PLT<100×109/L" (superscript 9 lost in scraping)
    ("HGB≤85g/L, PLT<100×109/L),", "<100×109/L", "<", None, 100, "x10^9/L"),
    # seeds/003: "Age 18 to 75 years"
    ("Age 18 to 75 years at the time of signing", "18 to 75 years", "between", 18, 75, "years"),
    # seeds/004: "WBC<1.5 × 109/L"
    ("WBC<1.5 × 109/L within 10 days", "<1.5 × 109/L", "<", None, 1.5, "x10^9/L"),
    # seeds/004: "eGFR<30ml/min"
    ("eGFR<30ml/min", "<30ml/min", "<", None, 30, "mL/min"),
    # seeds/004: "Age 5-18 years old."
    ("Age 5-18 years old.", "5-18 years old", "between", 5, 18, "years"),
    # chia-dev/NCT00050349_inc: "total bilirubin <1.5 X ULN"
    ("total bilirubin <1.5 X ULN; AST", "<1.5 X ULN", "<", None, 1.5, "x ULN"),
    # chia-dev/NCT00050349_inc: "ALT<2.5X ULN"
    ("AST, ALT<2.5X ULN (<5 X ULN", "<2.5X ULN", "<", None, 2.5, "x ULN"),
    # chia-dev/NCT00050349_inc: "life expectancy of greater than three (3) months"
    ("a life expectancy of greater than three (3) months", "greater than three (3) months", ">", 3, None, "months"),
    # chia-dev/NCT00050349_inc: "Karnofsky Performance Status > 60"
    ("Karnofsky Performance Status > 60", "> 60", ">", 60, None, None),
    # hint/NCT00002633: "PSA greater than 40 µg/L"
    ("T2, PSA greater than 40 µg/L", "greater than 40 µg/L", ">", 40, None, "ug/L"),
    # hint: "AST/ALT no greater than 2.5 times normal"
    ("AST/ALT no greater than 2.5 times normal Renal", "no greater than 2.5 times normal", "<=", None, 2.5, "x ULN"),
    # hint: "Creatinine =< 1.5mg/dl"
    ("Creatinine =< 1.5mg/dl", "=< 1.5mg/dl", "<=", None, 1.5, "mg/dL"),
    # hint: "Platelets greater than or equal to 100 x 10⁹/L"
    ("platelets greater than or equal to 100 x 10⁹/L, and", "greater than or equal to 100 x 10⁹/L", ">=", 100, None,
     "x10^9/L"),
    # hint: "GFR >= 70 ml/min/1.73m^2"
    ("GFR >= 70 ml/min/1.73m^2", ">= 70 ml/min/1.73m^2", ">=", 70, None, "mL/min/1.73m2"),
    # hint: "Transaminases (SGPT) may be up to 2.5x upper limit of normal"
    ("may be up to 2.5x upper limit of normal", "up to 2.5x upper limit of normal", "<=", None, 2.5, "x ULN"),
    # hint: "transaminases less than or equal to 2.5 times the upper limit of normal"
    ("transaminases less than or equal to 2.5 times the upper limit of normal",
     "less than or equal to 2.5 times the upper limit of normal", "<=", None, 2.5, "x ULN"),
    # hint: "neuroleptic monotherapy at doses not exceeding 6 mg risperdal"
    ("at doses not exceeding 6 mg risperdal", "not exceeding 6 mg", "<=", None, 6, "mg"),
    # hint: "Patients aged between 20 and 75 years, inclusive"
    ("Patients aged between 20 and 75 years, inclusive", "between 20 and 75 years", "between", 20, 75, "years"),
    # hint: "(in excess of 1 mg/kg/day)"
    ("steroids (in excess of 1 mg/kg/day).", "in excess of 1 mg/kg/day", ">", 1, None, "mg/kg/day"),
    # chia-dev (Value "greater than or equal to 1,500/mm3")
    ("ANC greater than or equal to 1,500/mm3", "greater than or equal to 1,500/mm3", ">=", 1500, None, "/mm3"),
    # chia-dev (Value "at least 30%")
    ("a reduction of at least 30%", "at least 30%", ">=", 30, None, "%"),
    # chia-dev (Value "18 to 70 years old" after "Age")
    ("Age 18 to 70 years old", "18 to 70 years old", "between", 18, 70, "years"),
    # hint: "Age 65 years or older"
    ("Age 65 years or older", "65 years or older", ">=", 65, None, "years"),
    # evals/gold_src/NCT02009488 (GUIDELINE 5, a range written as two bounds): "HbA1c >=7.0% and <= 9.5%"
    ("HbA1c >=7.0% and <= 9.5% at screening", ">=7.0% and <= 9.5%", "between", 7.0, 9.5, "%"),
    # evals/gold_src/NCT01530620: "aged ≥18 and ≤70 years"
    ("Patients aged ≥18 and ≤70 years", "≥18 and ≤70 years", "between", 18, 70, "years"),
    # evals/gold_src/NCT02607306: "HbA1c below or equal to 8.3%"
    ("HbA1c below or equal to 8.3%", "below or equal to 8.3%", "<=", None, 8.3, "%"),
    # evals/gold_src/NCT02607306: "equal to or above 2.5 times upper limit of normal"
    ("ALT equal to or above 2.5 times upper limit of normal", "equal to or above 2.5 times upper limit of normal",
     ">=", 2.5, None, "x ULN"),
    # seeds/000: "more than 2 times higher than normal reference value"
    ("transaminase more than 2 times higher than normal reference value",
     "more than 2 times higher than normal reference value", ">", 2, None, "x ULN"),
    # hint (37 trials) and ctgov/nsclc-ctg-studies.json: "ECOG performance status 0 or 1"
    ("ECOG performance status 0 or 1", "0 or 1", "between", 0, 1, None),
    # evals/gold_src/NCT02009488: "metformin >=1,000 mg per day"
    ("metformin >=1,000 mg per day", ">=1,000 mg per day", ">=", 1000, None, "mg/day"),
    # evals/gold_src/NCT02022007: "fasting triglyceride > 400 mg %"
    ("fasting triglyceride > 400 mg %", "> 400 mg %", ">", 400, None, "mg/dL"),
    # hint (5 trials): "... 1500/µL"
    ("ANC >= 1500/µL", ">= 1500/µL", ">=", 1500, None, "/uL"),
    # seeds/001: "Hepatitis C antibody positive" - a qualitative result (GUIDELINE 5)
    ("Hepatitis Cantibody positive.", "positive", None, None, None, None),
    # chia-dev/NCT00050349_inc: "negative serum pregnancy test" - a result, not a negation
    ("must have a negative serum pregnancy test", "negative", None, None, None, None),
    # ctgov NCT06221670 (evals/gold): "WHO physical status score 0\~1" - a tilde escaped by CT.gov's markdown
    ("WHO physical status score 0\\~1", "0\\~1", "between", 0, 1, None),
    # hint NCT00365365 (and 232 '>/=', 161 '</=' in HINT's criteria): the slash spelling of >= and <=
    ("Absolute neutrophil count (ANC) >/= 1,500/μL", ">/= 1,500/μL", ">=", 1500, None, "/uL"),
    ("Creatinine </= 1.5 x ULN", "</= 1.5 x ULN", "<=", None, 1.5, "x ULN"),
    # hint NCT01368263 (and 135 '/mcL' in HINT): NCI's spelling of per microlitre
    ("Leukocytes >= 3,000/mcL", ">= 3,000/mcL", ">=", 3000, None, "/uL"),
    # ctgov NCT01613326 (evals/gold): two bounds, the second refining the unit
    ("FEV1) ≥ 30%\n and < 80% of the predicted normal", "≥ 30%\n and < 80% of the predicted normal", "between", 30, 80,
     "% predicted"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "value_text", "comparator", "low", "high", "unit"), CASES)
def test_value(text: str, value_text: str, comparator: str, low: float, high: float, unit: str) -> None:
    found = [v for v in find_values(text) if v.text == value_text]
    assert found, f"no value {value_text!r} in {[v.text for v in find_values(text)]}"
    value = found[0]
    assert text[value.start : value.end] == value.text
    assert (value.comparator, value.low, value.high, value.unit) == (comparator, low, high, unit)


@pytest.mark.parametrize(
    "text",
    [
        "- 4. At least one muscle enzyme",  # seeds/001: a list number is not a value
        "EULAR/ACR Classification Standard in 2017.",  # seeds/001: a year with no unit
        "NCT00050349",  # an identifier
    ],
)
def test_bare_numbers_are_not_values(text: str) -> None:
    # the value finder reports only quantities with a comparator, a unit or a range
    assert [v.text for v in find_values(text) if v.comparator == "=" and v.unit is None] == []


def test_upper_limit_of_normal_alone_is_not_a_result() -> None:
    # seeds/001: "greater than normal upper limit" - 'normal' here names the limit, not a result
    assert [v.text for v in find_values("total bilirubin upper limit of normal") if v.comparator is None] == []


@pytest.mark.parametrize(
    ("text", "value", "low", "high"),
    [  # hint NCT00462358 'ECOG performance status of 0, 1 or 2' gave '1 or 2'
        ("ECOG performance status of 0, 1 or 2", "0, 1 or 2", 0, 2),
        ("Karnofsky 0, 1, or 2", "0, 1, or 2", 0, 2),
        ("platelets 1,500 or more", "1,500 or more", 1500, None),
    ],
)
def test_a_listed_range_runs_from_first_to_last(text: str, value: str, low: float, high: float | None) -> None:
    (found,) = find_values(text)
    assert (found.text, found.low, found.high) == (value, low, high)
