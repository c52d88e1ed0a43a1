"""Hand-checked values for each seed page (read off the files by a person, not the pipeline)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest import Document, iter_documents
from pipeline.schema import TrialRecord
from pipeline.segment import segment
from tests.conftest import SEEDS


def _record(stem: str) -> TrialRecord:
    (document,) = list(iter_documents([SEEDS / f"{stem}.txt"]))
    assert isinstance(document, Document)
    return segment(document)


def _top_level(record: TrialRecord, kind: str) -> list[str]:
    return [c.id for c in record.criteria if c.kind == kind and c.parent is None]


def test_seed_000_cover_page_layout() -> None:
    record = _record("000_a830f8c2bc95e8a6")
    trial = record.trial
    assert record.doc_id == "000_a830f8c2bc95e8a6"
    assert len(_top_level(record, "inclusion")) == 4
    assert len(_top_level(record, "exclusion")) == 7
    assert [p.value for p in trial.phases] == ["EARLY_PHASE1"]
    assert trial.status.value == "RECRUITING"
    assert trial.end_date.value == "2022-07-31"
    assert trial.sex.value == "ALL"
    assert trial.healthy_volunteers.value is False
    assert trial.lead_sponsor.value == "The First Affiliated Hospital with Nanjing Medical University"
    assert [c.value for c in trial.collaborators] == ["National Natural Science Foundation of China"]
    assert [i.value for i in trial.interventions] == ["Abatacept"]
    assert trial.title.value.startswith("An Exploratory Study on the Efficacy and Safety of Abatacept")
    inc1 = record.criteria[0]
    assert inc1.id == "inc-1" and inc1.text.startswith("Dermatomyositis confirmed")
    assert inc1.text.endswith("regardless of gender.")
    assert record.criteria[-1].text == "Mental disorders, or other patients unable to cooperate with treatment."


def test_seed_000_enrollment_zero_is_a_placeholder() -> None:
    record = _record("000_a830f8c2bc95e8a6")
    assert record.trial.enrollment is None
    assert any("enrollment 0 is a placeholder" in w for w in record.warnings)


def test_seed_001_nested_sub_items_and_lead_in() -> None:
    record = _record("001_ca660e7d86dc1c0c")
    by_id = {c.id: c for c in record.criteria}
    assert [c.id for c in record.criteria if c.parent == "inc-2"] == [f"inc-2.{n}" for n in range(1, 7)]
    assert by_id["inc-2"].text.endswith("Abnormal CSMs include:")
    assert by_id["inc-2.4"].text.endswith("the lowest level is 1.3 x upper limit normal")
    assert by_id["inc-3"].text.startswith("The dose of glucocorticoid")
    assert by_id["exc-1"].text == "Any subject meeting any of the following criteria should be excluded:"
    assert by_id["exc-2"].text == "Received intravenous glucocorticoid (> 1 mg/kg/d) within 4 weeks;"
    assert record.trial.status.value == "NOT_YET_RECRUITING"
    assert [p.value for p in record.trial.phases] == ["PHASE3"]
    assert [i.value for i in record.trial.interventions] == ["Aldesleukin", "Interleukin-2"]


def test_seed_002_has_no_criteria_and_says_so() -> None:
    record = _record("002_4dfc7fd4b7be275d")
    assert record.criteria == []
    assert "no eligibility criteria found" in record.warnings
    assert record.trial.title.value.startswith("The Efficacy and Safety of JAK Inhibitor")
    assert [p.value for p in record.trial.phases] == ["PHASE4"]
    assert record.trial.end_date.value == "2021-12-30"


def test_seed_003_blank_line_separated_items() -> None:
    record = _record("003_771e711b675f0f9f")
    assert len(_top_level(record, "inclusion")) == 5
    assert len(_top_level(record, "exclusion")) == 15
    assert [p.value for p in record.trial.phases] == ["NA"]
    assert record.criteria[-1].text.startswith("History of malignant tumor within 5 years prior to screening")
    assert record.criteria[-1].text.endswith("can be enrolled).")


def test_seed_004_centerwatch_layout() -> None:
    record = _record("004_26d5b2a701c48217")
    trial = record.trial
    assert (trial.min_age.value, trial.max_age.value) == (5, 18)
    assert trial.sex.value == "ALL"
    assert [c.value for c in trial.conditions] == ["Dermatomyositis", "Sjogren's Syndrome"]
    assert [i.value for i in trial.interventions] == ["Belimumab", "Rituximab"]
    (site,) = trial.sites
    assert site.value == {"facility": "Peking Union Medical College Hospital", "city": "Beijing",
                          "state": "Beijing", "zip": "100730", "country": "China"}
    assert len(_top_level(record, "inclusion")) == 4
    assert len(_top_level(record, "exclusion")) == 11
    assert record.criteria[0].text == "Age 5-18 years old."
    assert "Study Design" not in record.criteria[-1].text


@pytest.mark.parametrize("seed", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.stem)
def test_every_seed_span_is_exact(seed: Path) -> None:
    record = _record(seed.stem)
    for _, span in record.spans():
        if span.start is not None:
            assert record.source_text[span.start:span.end] == span.text
