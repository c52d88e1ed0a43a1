"""Reading gold records and prediction files, with one-line errors that name the file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from pipeline.errors import EvaluateError
from pipeline.schema import TrialRecord, first_error


def load_gold(directory: Path) -> list[TrialRecord]:
    """Every `*.json` TrialRecord in `directory`, sorted by file name."""
    if not directory.is_dir():
        raise EvaluateError(f"{directory}: gold directory not found")
    records = read_record_files(directory)
    if not records:
        raise EvaluateError(f"{directory}: no gold records (*.json)")
    ids = [r.doc_id for r in records]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise EvaluateError(f"{directory}: duplicate gold doc_id(s) {', '.join(duplicates)}")
    return records


def load_predictions(path: Path) -> dict[str, TrialRecord]:
    """A run's records.jsonl keyed by doc_id (blank lines ignored, duplicates refused)."""
    if not path.is_file():
        raise EvaluateError(f"{path}: prediction file not found")
    found: dict[str, TrialRecord] = {}
    for number, record in iter_record_lines(path):
        if record.doc_id in found:
            raise EvaluateError(f"{path}:{number}: duplicate doc_id {record.doc_id!r}")
        found[record.doc_id] = record
    return found


def iter_record_lines(path: Path) -> Iterator[tuple[int, TrialRecord]]:
    """(line number, record) for each non-blank line of a records.jsonl; a bad line names file:line."""
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                yield number, TrialRecord.model_validate_json(line)
            except ValidationError as exc:
                raise EvaluateError(f"{path}:{number}: not a valid TrialRecord ({first_error(exc)})") from exc


def read_record_files(directory: Path) -> list[TrialRecord]:
    """Every `*.json` TrialRecord in `directory`, sorted by file name; a bad file is named."""
    records = []
    for path in sorted(directory.glob("*.json")):
        try:
            records.append(TrialRecord.model_validate_json(path.read_text(encoding="utf-8")))
        except ValidationError as exc:
            raise EvaluateError(f"{path}: not a valid TrialRecord ({first_error(exc)})") from exc
    return records
