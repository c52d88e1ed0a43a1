"""The record contract: exact spans, unique ids, parents before children."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pipeline.schema import Criterion, Entity, Source, TrialRecord, Value

TEXT = "Inclusion Criteria:\n1. hemoglobin < 80 g/L\n2. Age 18-75"


def _record(**changes: object) -> TrialRecord:
    start = TEXT.index("hemoglobin")
    data = {
        "doc_id": "d",
        "source": Source(path="d.txt", format="text", sha256="0" * 64),
        "source_text": TEXT,
        "criteria": [
            Criterion(id="inc-1", kind="inclusion", text="hemoglobin < 80 g/L", start=start, end=start + 19,
                      entities=[Entity(id="inc-1.e1", type="Measurement", text="hemoglobin", start=start,
                                       end=start + 10,
                                       value=Value(text="< 80 g/L", start=start + 11, end=start + 19,
                                                   comparator="<", high=80, unit="g/L"))]),
        ],
    }
    data.update(changes)
    return TrialRecord(**data)


def test_valid_record_round_trips_through_json() -> None:
    record = _record()
    assert TrialRecord.model_validate_json(record.model_dump_json()) == record


def test_inexact_criterion_span_is_rejected() -> None:
    bad = Criterion(id="inc-1", kind="inclusion", text="hemoglobin", start=0, end=10)
    with pytest.raises(ValidationError, match=r"source_text\[0:10\] is 'Inclusion '"):
        _record(criteria=[bad])


def test_inexact_value_span_is_rejected() -> None:
    record = _record()
    data = record.model_dump()
    data["criteria"][0]["entities"][0]["value"]["start"] += 1
    with pytest.raises(ValidationError, match=r"entity inc-1\.e1 value"):
        TrialRecord.model_validate(data)


def test_span_past_the_end_is_rejected() -> None:
    bad = Criterion(id="inc-1", kind="inclusion", text="x", start=len(TEXT), end=len(TEXT) + 1)
    with pytest.raises(ValidationError, match="past the end"):
        _record(criteria=[bad])


def test_duplicate_ids_and_orphans_are_rejected() -> None:
    start = TEXT.index("Age")
    age = Criterion(id="inc-2", kind="inclusion", text="Age 18-75", start=start, end=start + 9)
    with pytest.raises(ValidationError, match="duplicate criterion id"):
        _record(criteria=[age, age])
    orphan = age.model_copy(update={"id": "inc-2.1", "parent": "inc-2"})
    with pytest.raises(ValidationError, match="comes before its parent"):
        _record(criteria=[orphan])


def test_unknown_entity_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Entity(id="e", type="Gene", text="x", start=0, end=1)
