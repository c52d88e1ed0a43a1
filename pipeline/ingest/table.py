"""JSONL and CSV tables: one trial a row, a criteria text column, optional metadata columns.

`source_text` of a row is its criteria cell verbatim. Metadata comes from columns whose names
match the aliases below (case-insensitive), e.g. HINT's `nct_id, status, phase, diseases, drugs`
or AACT's `nct_id, gender, minimum_age, maximum_age, healthy_volunteers`.
"""

from __future__ import annotations

import ast
import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import IngestError
from pipeline.ingest import Document, decode, normalise, sha256_text
from pipeline.schema import Evidence, Source, Trial

ID_FIELDS = ("nct_id", "nctid", "nct", "doc_id", "id", "trial_id")
TEXT_FIELDS = ("criteria", "eligibility_criteria", "eligibilitycriteria", "eligibility", "criteria_text", "text")

_SCALARS = {
    "title": (("brief_title", "title", "official_title"), lambda s: s),
    "status": (("overall_status", "status"), normalise.status),
    "end_date": (("completion_date", "end_date", "primary_completion_date"), normalise.iso_date),
    "enrollment": (("enrollment", "target_enrollment"), normalise.enrollment),
    "sex": (("gender", "sex"), normalise.sex),
    "min_age": (("minimum_age", "min_age"), normalise.age_years),
    "max_age": (("maximum_age", "max_age"), normalise.age_years),
    "healthy_volunteers": (("healthy_volunteers", "accepts_healthy_volunteers"), normalise.yes_no),
    "lead_sponsor": (("lead_sponsor", "sponsor"), lambda s: s),
}
_LISTS = {
    "conditions": ("conditions", "diseases", "condition"),
    "interventions": ("interventions", "drugs", "intervention_names", "treatments"),
    "collaborators": ("collaborators",),
}


def read_table(
    path: Path, raw: bytes, *, id_field: str | None, text_field: str | None
) -> Iterator[Document | IngestError]:
    text = decode(path, raw)
    if isinstance(text, IngestError):
        yield text
        return
    rows = _jsonl_rows(path, text) if path.suffix.lower() == ".jsonl" else _csv_rows(path, text)
    for row_number, row in rows:
        if isinstance(row, IngestError):
            yield row
        else:
            yield row_document(path, row_number, row, id_field=id_field, text_field=text_field)


def _jsonl_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any] | IngestError]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, IngestError(f"{path}:{number}", f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(row, dict):
            yield number, IngestError(f"{path}:{number}", "row is not a JSON object")
            continue
        yield number, row


def _csv_rows(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any] | IngestError]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        yield from enumerate(reader, start=1)
    except csv.Error as exc:
        yield reader.line_num, IngestError(f"{path}:{reader.line_num}", f"malformed CSV: {exc}")


def _find_field(row: dict[str, Any], wanted: str | None, aliases: tuple[str, ...]) -> str | None:
    lowered = {key.lower(): key for key in row}
    if wanted is not None:
        return lowered.get(wanted.lower())
    return next((lowered[alias] for alias in aliases if alias in lowered), None)


def row_document(
    path: Path, row_number: int, row: dict[str, Any], *, id_field: str | None, text_field: str | None
) -> Document | IngestError:
    where = f"{path}:{row_number}"
    text_key = _find_field(row, text_field, TEXT_FIELDS)
    if text_key is None:
        wanted = text_field or " / ".join(TEXT_FIELDS)
        return IngestError(where, f"no criteria column ({wanted}); name it with --text-field")
    criteria = row[text_key]
    if not isinstance(criteria, str) or not criteria.strip():
        return IngestError(where, f"criteria column {text_key!r} is empty")
    id_key = _find_field(row, id_field, ID_FIELDS)
    doc_id = str(row[id_key]).strip() if id_key and row.get(id_key) not in (None, "") else f"{path.stem}-{row_number}"
    trial = row_metadata(row)
    if id_key and doc_id.upper().startswith("NCT"):
        trial.nct_id = Evidence(value=doc_id, text=doc_id)
    fmt = "jsonl" if path.suffix.lower() == ".jsonl" else "csv"
    source = Source(path=str(path), format=fmt, sha256=sha256_text(criteria), row=row_number)
    return Document(doc_id, source, criteria, layout="criteria", trial=trial)


def _cell_list(value: Any) -> list[str]:
    """Lists arrive as JSON arrays, Python-literal strings ("['a', 'b']") or '|'-separated text."""
    if isinstance(value, list):
        return [str(v) for v in value if str(v).strip()]
    if not isinstance(value, str) or not value.strip():
        return []
    if value.strip().startswith("["):
        try:
            parsed = ast.literal_eval(value)
            if isinstance(parsed, list):
                return [str(v) for v in parsed if str(v).strip()]
        except (ValueError, SyntaxError):
            pass
    return [part.strip() for part in value.split("|") if part.strip()]


def row_metadata(row: dict[str, Any]) -> Trial:
    trial = Trial()
    for name, (aliases, parse) in _SCALARS.items():
        key = _find_field(row, None, aliases)
        raw = row.get(key) if key else None
        if raw in (None, "") or isinstance(raw, (list, dict)):
            continue
        value = raw if isinstance(raw, bool) else parse(str(raw))
        if value is not None:
            setattr(trial, name, Evidence(value=value, text=str(raw)))
    phase_key = _find_field(row, None, ("phase", "phases"))
    if phase_key and isinstance(row[phase_key], str):
        trial.phases = [Evidence(value=p, text=row[phase_key]) for p in normalise.phases(row[phase_key])]
    for name, aliases in _LISTS.items():
        key = _find_field(row, None, aliases)
        if key:
            setattr(trial, name, [Evidence(value=v, text=v) for v in _cell_list(row[key])])
    return trial
