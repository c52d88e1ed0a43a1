"""Reading gold records and prediction files, with one-line errors that name the file."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from pipeline.schema import TrialRecord, first_error


class EvalInputError(Exception):
    """Unusable evaluation input; the message is one line naming the file and the problem."""


def load_gold(directory: Path) -> list[TrialRecord]:
    """Every `*.json` TrialRecord in `directory`, sorted by file name."""
    if not directory.is_dir():
        raise EvalInputError(f"{directory}: gold directory not found")
    records = []
    for path in sorted(directory.glob("*.json")):
        try:
            records.append(TrialRecord.model_validate_json(path.read_text(encoding="utf-8")))
        except ValidationError as exc:
            raise EvalInputError(f"{path}: not a valid TrialRecord ({first_error(exc)})") from exc
    if not records:
        raise EvalInputError(f"{directory}: no gold records (*.json)")
    ids = [r.doc_id for r in records]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise EvalInputError(f"{directory}: duplicate gold doc_id(s) {', '.join(duplicates)}")
    return records


def load_predictions(path: Path) -> dict[str, TrialRecord]:
    """A run's records.jsonl keyed by doc_id (blank lines ignored, duplicates refused)."""
    if not path.is_file():
        raise EvalInputError(f"{path}: prediction file not found")
    found: dict[str, TrialRecord] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = TrialRecord.model_validate_json(line)
            except ValidationError as exc:
                raise EvalInputError(f"{path}:{number}: not a valid TrialRecord ({first_error(exc)})") from exc
            if record.doc_id in found:
                raise EvalInputError(f"{path}:{number}: duplicate doc_id {record.doc_id!r}")
            found[record.doc_id] = record
    return found
