"""Typed records that flow through every stage, defined once.

One `TrialRecord` per input document. Every piece of text it carries points back to
`source_text` by character offsets, and the validators refuse a record where
`source_text[start:end] != text` for any span: downstream code may rely on that.
"""

from __future__ import annotations

from collections.abc import Iterator
from enum import StrEnum
from typing import Any, Literal, NoReturn

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCHEMA_VERSION = "1.0"


def first_error(exc: ValidationError) -> str:
    """The first problem of a validation error as one line: `criteria.0.start: <message>`."""
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


class EntityType(StrEnum):
    """The eight Chia domain types."""

    CONDITION = "Condition"
    DRUG = "Drug"
    PROCEDURE = "Procedure"
    MEASUREMENT = "Measurement"
    OBSERVATION = "Observation"
    DEVICE = "Device"
    PERSON = "Person"
    VISIT = "Visit"


Comparator = Literal["<", "<=", ">", ">=", "=", "between"]
Direction = Literal["before", "after", "during"]
Alignment = Literal["exact", "fuzzy"]
CriterionKind = Literal["inclusion", "exclusion"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Span(_Model):
    """A piece of `source_text`; offsets are null only for values from structured fields."""

    text: str
    start: int | None = None
    end: int | None = None

    @model_validator(mode="after")
    def _offsets_consistent(self) -> Span:
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end must both be set or both be null")
        if self.start is not None and self.end is not None and not 0 <= self.start <= self.end:
            raise ValueError(f"bad offsets {self.start}:{self.end}")
        return self


class Evidence(Span):
    """A normalised metadata value and the text it was read from."""

    value: Any = None


class Value(Span):
    """A quantity qualifying an entity: `hemoglobin < 80 g/L` -> comparator '<', high 80, unit 'g/L'.

    `low`/`high` are the bounds: '>= 18' sets low 18, '< 80' sets high 80, 'between' sets both,
    '=' sets both to the same number. Multiples of a reference limit keep the reference in `unit`
    (`2 x ULN` -> high 2, unit 'x ULN').
    """

    comparator: Comparator | None = None
    low: float | None = None
    high: float | None = None
    unit: str | None = None


class Temporal(Span):
    """A time window qualifying an entity, normalised to days relative to an anchor."""

    direction: Direction | None = None
    anchor: str | None = None
    min_days: float | None = None
    max_days: float | None = None


class Entity(_Model):
    id: str
    type: EntityType
    text: str
    start: int
    end: int
    negated: bool = False
    value: Value | None = None
    temporal: Temporal | None = None
    alignment: Alignment = "exact"


class Criterion(_Model):
    """One inclusion/exclusion item; sub-items have `parent` set and ids like `inc-2.3`."""

    id: str
    kind: CriterionKind
    text: str
    start: int
    end: int
    parent: str | None = None
    entities: list[Entity] = Field(default_factory=list)


class Source(_Model):
    path: str
    format: Literal["text", "ctgov_json", "jsonl", "csv", "inline"] = Field(
        description="How the document came in; `inline` is text given directly to `pipeline.structure`")
    sha256: str = Field(description="SHA-256 of source_text encoded as UTF-8")
    row: int | None = Field(default=None, description="1-based row/item number inside a table or list file")


class Trial(_Model):
    title: Evidence | None = None
    nct_id: Evidence | None = None
    status: Evidence | None = None
    phases: list[Evidence] = Field(default_factory=list)
    end_date: Evidence | None = None
    enrollment: Evidence | None = None
    sex: Evidence | None = None
    min_age: Evidence | None = None
    max_age: Evidence | None = None
    healthy_volunteers: Evidence | None = None
    lead_sponsor: Evidence | None = None
    collaborators: list[Evidence] = Field(default_factory=list)
    conditions: list[Evidence] = Field(default_factory=list)
    interventions: list[Evidence] = Field(default_factory=list)
    sites: list[Evidence] = Field(default_factory=list)

    def evidence(self) -> list[tuple[str, Evidence]]:
        """Every evidence object with its field name, in field order."""
        found: list[tuple[str, Evidence]] = []
        for name in type(self).model_fields:
            item = getattr(self, name)
            items = item if isinstance(item, list) else [item]
            found.extend((name, ev) for ev in items if ev is not None)
        return found


class Provenance(_Model):
    backend: str = "none"
    model: str | None = None
    prompt_version: str | None = None
    prompt_hash: str | None = None
    pipeline_version: str = ""


class Annotation(_Model):
    """How a gold record was made (gold files only)."""

    method: str
    checked_by: str
    date: str
    notes: str = ""


class TrialRecord(_Model):
    schema_version: str = SCHEMA_VERSION
    doc_id: str
    source: Source
    source_text: str
    warnings: list[str] = Field(default_factory=list)
    trial: Trial = Field(default_factory=Trial)
    criteria: list[Criterion] = Field(default_factory=list)
    provenance: Provenance = Field(default_factory=Provenance)
    annotation: Annotation | None = None

    @model_validator(mode="after")
    def _check_spans_and_ids(self) -> TrialRecord:
        self.check_contract()
        return self

    def check_contract(self) -> None:
        """Raise ValueError unless every span is exact and every id unique (parents first).

        Runs on every validation, and once more on each record a backend returns: `model_copy`
        and `model_construct` skip validation, and a record must never be written without this.
        """
        text = self.source_text
        for span in self._with_offsets():
            start, end = span.start, span.end
            if start is not None and end is not None and not (0 <= start <= end <= len(text)
                                                              and text[start:end] == span.text):
                self._reject(span)
        self._check_ids()

    def _with_offsets(self) -> Iterator[Span | Criterion | Entity]:
        """What `spans` lists, without building its labels (the contract check runs on every record)."""
        for _, evidence in self.trial.evidence():
            yield evidence
        for criterion in self.criteria:
            yield criterion
            for entity in criterion.entities:
                yield entity
                if entity.value is not None:
                    yield entity.value
                if entity.temporal is not None:
                    yield entity.temporal

    def _reject(self, span: Span | Criterion | Entity) -> NoReturn:
        """Raise the ValueError that names where the inexact `span` sits and what is wrong with it."""
        where = next(label for label, candidate in self.spans() if candidate is span)
        start, end = span.start, span.end
        if not 0 <= start <= end:  # type: ignore[operator]
            raise ValueError(f"{where}: bad offsets {start}:{end}")
        if end > len(self.source_text):  # type: ignore[operator]
            raise ValueError(f"{where}: span {start}:{end} is past the end of source_text")
        actual = self.source_text[start:end]
        raise ValueError(f"{where}: source_text[{start}:{end}] is {actual!r}, not {span.text!r}")

    def _check_ids(self) -> None:
        seen: set[str] = set()
        for criterion in self.criteria:
            if criterion.id in seen:
                raise ValueError(f"duplicate criterion id {criterion.id!r}")
            if criterion.parent is not None and criterion.parent not in seen:
                raise ValueError(f"criterion {criterion.id!r} comes before its parent {criterion.parent!r}")
            seen.add(criterion.id)
        entity_ids = [e.id for c in self.criteria for e in c.entities]
        if len(entity_ids) != len(set(entity_ids)):
            raise ValueError("duplicate entity ids")

    def spans(self) -> list[tuple[str, Span | Criterion | Entity]]:
        """Every object with offsets, labelled with where it sits (for error messages and tests)."""
        found: list[tuple[str, Span | Criterion | Entity]] = [
            (f"trial.{name}", ev) for name, ev in self.trial.evidence()
        ]
        for criterion in self.criteria:
            found.append((f"criterion {criterion.id}", criterion))
            for entity in criterion.entities:
                found.append((f"entity {entity.id}", entity))
                for part in (entity.value, entity.temporal):
                    if part is not None:
                        found.append((f"entity {entity.id} {type(part).__name__.lower()}", part))
        return found

    def entities(self) -> list[Entity]:
        return [e for c in self.criteria for e in c.entities]


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a TrialRecord, self-describing (`$schema`, a versioned `$id`)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:trialstruct:trial-record:{SCHEMA_VERSION}",
        **TrialRecord.model_json_schema(),
    }
