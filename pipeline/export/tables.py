"""The exported tables and their columns, defined once (README "Exports" documents the same list).

One row per document, per criterion and per entity. Offsets are the record's: for every row with
a span, `documents.source_text[start:end] == text`, so a table user can check or re-slice the text.
Lists of metadata values (phases, conditions, ...) are joined with `"; "`; a metadata field with
no value is empty (null). Value and time-window columns are null when the entity has none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.schema import Criterion, Entity, Evidence, Temporal, Trial, TrialRecord, Value

ColumnType = Literal["string", "int64", "float64", "bool"]
LIST_SEPARATOR = "; "


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    description: str


def _scalar(evidence: Evidence) -> str:
    value = evidence.value if evidence.value is not None else evidence.text
    return str(value).lower() if isinstance(value, bool) else str(value)


def _metadata_value(item: Evidence | list[Evidence] | None) -> str | None:
    items = item if isinstance(item, list) else [item] if item is not None else []
    return LIST_SEPARATOR.join(_scalar(e) for e in items) if items else None


METADATA = tuple(Trial.model_fields)

DOCUMENT_COLUMNS = (
    Column("doc_id", "string", "the record's doc_id (NCT id when known, else the file stem)"),
    Column("source_path", "string", "the input file"),
    Column("source_format", "string", "text, ctgov_json, jsonl or csv"),
    Column("source_row", "int64", "1-based row inside a table or list file (null for one-document files)"),
    Column("source_sha256", "string", "SHA-256 of source_text"),
    *(Column(name, "string", f"metadata `{name}`: normalised value(s), `; `-joined") for name in METADATA),
    Column("n_criteria", "int64", "criteria (sub-items included)"),
    Column("n_entities", "int64", "entities over all criteria"),
    Column("warnings", "string", "the record's warnings, one per line"),
    Column("backend", "string", "extraction backend"),
    Column("model", "string", "model name or rules version"),
    Column("source_text", "string", "the exact text every offset points into"),
)

CRITERION_COLUMNS = (
    Column("doc_id", "string", "document of the criterion"),
    Column("criterion_id", "string", "positional id: inc-2, its sub-items inc-2.1, ..."),
    Column("kind", "string", "inclusion or exclusion"),
    Column("parent", "string", "id of the enclosing criterion for a sub-item, else null"),
    Column("start", "int64", "offset of the criterion in source_text"),
    Column("end", "int64", "end offset (exclusive)"),
    Column("text", "string", "source_text[start:end]"),
    Column("n_entities", "int64", "entities of this criterion"),
)

ENTITY_COLUMNS = (
    Column("doc_id", "string", "document of the entity"),
    Column("criterion_id", "string", "criterion the entity belongs to"),
    Column("entity_id", "string", "entity id, unique within the document"),
    Column("type", "string", "Condition, Drug, Procedure, Measurement, Observation, Device, Person or Visit"),
    Column("text", "string", "source_text[start:end]"),
    Column("start", "int64", "offset in source_text"),
    Column("end", "int64", "end offset (exclusive)"),
    Column("negated", "bool", "the criterion asks for the absence of the entity"),
    Column("alignment", "string", "exact, or fuzzy when a model's text was placed approximately"),
    Column("value_text", "string", "text of the value (`< 80 g/L`)"),
    Column("value_start", "int64", "offset of the value text"),
    Column("value_end", "int64", "end offset of the value text"),
    Column("value_comparator", "string", "<, <=, >, >=, = or between"),
    Column("value_low", "float64", "lower bound"),
    Column("value_high", "float64", "upper bound"),
    Column("value_unit", "string", "unit as normalised (`g/L`, `x ULN`)"),
    Column("temporal_text", "string", "text of the time window (`within 4 weeks prior to screening`)"),
    Column("temporal_start", "int64", "offset of the time-window text"),
    Column("temporal_end", "int64", "end offset of the time-window text"),
    Column("temporal_direction", "string", "before, after or during"),
    Column("temporal_anchor", "string", "what the window is relative to (screening, first_dose, ...)"),
    Column("temporal_min_days", "float64", "window lower bound in days"),
    Column("temporal_max_days", "float64", "window upper bound in days"),
)


def _document_row(record: TrialRecord) -> dict[str, Any]:
    return {
        "doc_id": record.doc_id,
        "source_path": record.source.path,
        "source_format": record.source.format,
        "source_row": record.source.row,
        "source_sha256": record.source.sha256,
        **{name: _metadata_value(getattr(record.trial, name)) for name in METADATA},
        "n_criteria": len(record.criteria),
        "n_entities": len(record.entities()),
        "warnings": "\n".join(record.warnings) or None,
        "backend": record.provenance.backend,
        "model": record.provenance.model,
        "source_text": record.source_text,
    }


def _criterion_row(record: TrialRecord, criterion: Criterion) -> dict[str, Any]:
    return {
        "doc_id": record.doc_id,
        "criterion_id": criterion.id,
        "kind": criterion.kind,
        "parent": criterion.parent,
        "start": criterion.start,
        "end": criterion.end,
        "text": criterion.text,
        "n_entities": len(criterion.entities),
    }


VALUE_FIELDS = ("text", "start", "end", "comparator", "low", "high", "unit")
TEMPORAL_FIELDS = ("text", "start", "end", "direction", "anchor", "min_days", "max_days")


def _prefixed(prefix: str, part: Value | Temporal | None, names: tuple[str, ...]) -> dict[str, Any]:
    """`value_low`, `temporal_anchor`, ...: the fields of a value or time window, all null when absent."""
    return {f"{prefix}_{name}": getattr(part, name) if part is not None else None for name in names}


def _entity_row(record: TrialRecord, criterion: Criterion, entity: Entity) -> dict[str, Any]:
    return {
        "doc_id": record.doc_id,
        "criterion_id": criterion.id,
        "entity_id": entity.id,
        "type": str(entity.type),
        "text": entity.text,
        "start": entity.start,
        "end": entity.end,
        "negated": entity.negated,
        "alignment": entity.alignment,
        **_prefixed("value", entity.value, VALUE_FIELDS),
        **_prefixed("temporal", entity.temporal, TEMPORAL_FIELDS),
    }


def _documents(record: TrialRecord) -> Iterator[dict[str, Any]]:
    yield _document_row(record)


def _criteria(record: TrialRecord) -> Iterator[dict[str, Any]]:
    for criterion in record.criteria:
        yield _criterion_row(record, criterion)


def _entities(record: TrialRecord) -> Iterator[dict[str, Any]]:
    for criterion in record.criteria:
        for entity in criterion.entities:
            yield _entity_row(record, criterion, entity)


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    rows_of: Callable[[TrialRecord], Iterator[dict[str, Any]]]


TABLES = (
    Table("documents", DOCUMENT_COLUMNS, _documents),
    Table("criteria", CRITERION_COLUMNS, _criteria),
    Table("entities", ENTITY_COLUMNS, _entities),
)
