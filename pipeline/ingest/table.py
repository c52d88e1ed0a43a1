"""JSONL and CSV tables: one trial a row, a criteria text column, optional metadata columns.

`source_text` of a row is its criteria cell verbatim. Metadata comes from columns whose names
match the aliases below (case-insensitive), e.g. HINT's `nct_id, status, phase, diseases, drugs`
or AACT's `nct_id, gender, minimum_age, maximum_age, healthy_volunteers`.
"""

from __future__ import annotations

import ast
import codecs
import csv
import io
import itertools
import json
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pipeline.errors import IngestError
from pipeline.ingest import (
    Document,
    guarded_row,
    json_kind,
    normalise,
    sha256_text,
    undecodable_byte,
    unicode_problem,
)
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


def read_csv_stream(path: Path, handle: BinaryIO, max_bytes: int, *, id_field: str | None,
                    text_field: str | None) -> Iterator[Document | IngestError]:
    """A CSV stream read a record at a time (quoting can span lines; a broken record resumes at
    the next line); `max_bytes` limits one record, not the file."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")
    lines = _text_lines(text, max_bytes)
    blank = 0
    while (first := next(lines, None)) is not None and not first.strip():
        blank += 1
    if first is None:
        yield IngestError(str(path), "file is empty")
        return
    feed = _LineFeed(itertools.chain([first], lines), max_bytes, first_number=blank + 1)
    yield from _documents(path, _csv_rows(path, _csv_records(feed), text_field), id_field, text_field)


def _row_error(path: Path, row: int, message: str) -> IngestError:
    return IngestError(str(path), f"row {row}: {message}", row=row)


def read_jsonl_stream(path: Path, handle: BinaryIO, max_bytes: int, *, id_field: str | None,
                      text_field: str | None) -> Iterator[Document | IngestError]:
    """JSONL rows from an open binary stream (a file, or standard input), named `path` in errors."""
    yield from _documents(path, _jsonl_rows(path, _lines(path, handle, max_bytes)), id_field, text_field)


def _lines(path: Path, handle: BinaryIO, max_bytes: int) -> Iterator[tuple[int, str | IngestError]]:
    """Numbered lines split on `\\n` only (JSON strings may hold U+2028, U+2029 or U+0085 raw, and
    row numbers must stay line numbers), decoded one by one; an empty file is an error."""
    seen_text = False
    for number in itertools.count(1):
        raw = handle.readline(max_bytes + 1)
        if not raw:
            break
        if number == 1:
            raw = raw.removeprefix(codecs.BOM_UTF8)
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            while (rest := handle.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield number, _row_error(path, number, f"row is over the {max_bytes:,}-byte limit (--max-bytes)")
            continue
        seen_text = seen_text or bool(raw.strip())
        try:
            yield number, raw.decode("utf-8").removesuffix("\n")
        except UnicodeDecodeError as exc:
            yield number, _row_error(path, number, f"not valid UTF-8: byte 0x{raw[exc.start]:02x} at "
                                                   f"byte {exc.start} of the row")
    if not seen_text:
        yield 0, IngestError(str(path), "file is empty")


def _documents(path: Path, rows: Iterable[tuple[int, dict[str, Any] | IngestError]], id_field: str | None,
               text_field: str | None) -> Iterator[Document | IngestError]:
    for row_number, row in rows:
        if isinstance(row, IngestError):
            yield row
        else:
            build = partial(row_document, path, row_number, row, id_field=id_field, text_field=text_field)
            yield guarded_row(path, row_number, build)


def _jsonl_rows(path: Path, lines: Iterable[tuple[int, str | IngestError]]
                ) -> Iterator[tuple[int, dict[str, Any] | IngestError]]:
    for number, line in lines:
        if isinstance(line, IngestError):
            yield number, line
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, _row_error(path, number, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(row, dict):
            yield number, _row_error(path, number, f"row is {json_kind(row)}, expected a JSON object")
            continue
        yield number, row


def _csv_rows(path: Path, records: Iterator[tuple[int, list[str] | str]], text_field: str | None
              ) -> Iterator[tuple[int, dict[str, Any] | IngestError]]:
    """Rows keyed by the header. A problem with the header (no criteria column, another delimiter)
    is one error for the file. A broken row is one error: reading resumes at the next line, and the
    lines that do not parse as rows until the next good one (the rest of an unterminated quoted
    cell) belong to the same error."""
    first = next(records, None)
    if first is None or isinstance(first[1], str):
        yield 0, IngestError(str(path), f"cannot read the CSV header: {first[1] if first else 'no header row'}")
        return
    header = first[1]
    text_key = _find_field(dict.fromkeys(header), text_field, TEXT_FIELDS)
    if text_key is None:
        yield 0, IngestError(str(path), _no_text_column(header, text_field))
        return
    shape = _RowShape(len(header), header.index(text_key) + 1, text_key)
    broken: _BrokenRows | None = None
    for row, (line, fields) in enumerate(records, start=1):
        problem = shape.problem(fields, strict=broken is not None)
        if problem is None:
            if broken is not None:
                yield broken.row, broken.error(path, resumed_at=line)
                broken = None
            assert not isinstance(fields, str)
            if bad := _undecodable(fields):
                yield row, _row_error(path, row, f"not valid UTF-8: byte 0x{bad:02x} (line {line})")
                continue
            yield row, dict(zip(header, [*fields, *[None] * (len(header) - len(fields))], strict=True))
        elif broken is None:
            broken = _BrokenRows(row, line, problem)
        else:
            broken.last_row, broken.last_line = row, line
    if broken is not None:
        yield broken.row, broken.error(path, resumed_at=None)


@dataclass(frozen=True)
class _RowShape:
    """What a record needs to be a row: no more fields than the header, and enough to reach the
    criteria column (short rows are otherwise fine: trailing empty cells are often left out)."""

    width: int
    needed: int
    text_key: str

    def problem(self, fields: list[str] | str, *, strict: bool) -> str | None:
        """What is wrong with one parsed record; `strict` (after a broken row) refuses any short row."""
        if isinstance(fields, str):
            return fields
        if len(fields) > self.width or (strict and len(fields) < self.width):
            return f"{len(fields)} fields but the header has {self.width} (an unquoted comma in a cell?)"
        if len(fields) < self.needed:
            return (f"{len(fields)} field(s), too few to reach the criteria column {self.text_key!r} "
                    f"(column {self.needed} of {self.width}; an unquoted line break in a cell?)")
        return None


@dataclass
class _BrokenRows:
    """A run of CSV records that do not parse as rows, reported as one error at its first row."""

    row: int
    line: int
    problem: str
    last_row: int = 0
    last_line: int = 0

    def error(self, path: Path, resumed_at: int | None) -> IngestError:
        if not self.last_row:
            return _row_error(path, self.row, f"{self.problem} (line {self.line})")
        rest = f"; reading resumed at line {resumed_at}" if resumed_at else ""
        return _row_error(path, self.row, f"{self.problem} (line {self.line}); the {self.last_row - self.row} "
                                          f"record(s) after it, to line {self.last_line}, did not parse "
                                          f"either{rest}")


def _no_text_column(header: list[str], text_field: str | None) -> str:
    wanted = repr(text_field) if text_field else " / ".join(TEXT_FIELDS)
    found = ", ".join(repr(name) for name in header)
    message = f"no criteria column ({wanted}) among the {len(header)} column(s) found: {found}"
    delimiter = next((d for d in (";", "\t", "|") if len(header) == 1 and d in header[0]), None)
    if delimiter is not None:
        return f"{message}; the header looks {delimiter!r}-separated, but CSV input must be comma-separated"
    return f"{message}; name the column with --text-field"


_CSV_PROBLEMS = {"unexpected end of data": "unterminated quote: the quoted cell opened here never closes"}


def _undecodable(fields: list[str]) -> int | None:
    """The first byte of a record's cells that was not UTF-8, or None."""
    return next((bad[1] for cell in fields if (bad := undecodable_byte(cell))), None)


def _text_lines(text: io.TextIOWrapper, max_bytes: int) -> Iterator[str]:
    """Lines with their endings (`\n`, `\r\n` or `\r`); a line over `max_bytes` is cut there and
    the rest of it skipped, so one endless line is never held (its record is then over the limit)."""
    while line := text.readline(max_bytes + 1):
        if len(line) > max_bytes and not line.endswith(("\n", "\r")):
            while (rest := text.readline(1 << 20)) and not rest.endswith(("\n", "\r")):
                pass
        yield line


class _RecordTooLong(Exception):
    pass


class _LineFeed:
    """Numbered lines for the csv module, keeping the lines of the record being read, so that
    after a broken record reading can restart at the line after its first."""

    def __init__(self, lines: Iterator[str], max_bytes: int, first_number: int) -> None:
        self.lines, self.max_bytes = lines, max_bytes
        self.replay: deque[str] = deque()
        self.record: list[str] = []
        self.record_chars = 0
        self.record_start = first_number  # line number of the record's first line

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = self.replay.popleft() if self.replay else next(self.lines)
        self.record.append(line)
        self.record_chars += len(line)
        if self.record_chars > self.max_bytes:
            raise _RecordTooLong
        return line

    def record_done(self) -> None:
        self.record_start += len(self.record)
        self.record, self.record_chars = [], 0

    def restart(self) -> None:
        """Read again from the line after the broken record's first one."""
        self.replay.extendleft(reversed(self.record[1:]))
        self.record_start += 1
        self.record, self.record_chars = [], 0


def _csv_records(feed: _LineFeed) -> Iterator[tuple[int, list[str] | str]]:
    """(first line number, fields) for each CSV record, or (line number, problem) for a broken one.

    The csv module, left alone, lets an unterminated quote swallow every later row; here it reads
    strictly, and after a broken record parsing restarts at the line after the record's first
    line, so the rows it would have swallowed are read as rows."""
    # Records are bounded by --max-bytes already; the csv module's own 131,072-character limit is not
    # a property of the data (the module offers no per-reader limit, so the process-wide one is raised).
    csv.field_size_limit(max(csv.field_size_limit(), feed.max_bytes + 1))
    while True:
        reader = csv.reader(feed, strict=True)
        try:
            for fields in reader:
                if fields:
                    yield feed.record_start, fields
                feed.record_done()
            return
        except csv.Error as exc:
            yield feed.record_start, _CSV_PROBLEMS.get(str(exc), f"malformed CSV: {exc}")
        except _RecordTooLong:
            yield feed.record_start, (f"record is over the {feed.max_bytes:,}-byte limit (--max-bytes; an "
                                      "unterminated quote?)")
        feed.restart()


def _find_field(row: dict[str, Any], wanted: str | None, aliases: tuple[str, ...]) -> str | None:
    lowered = {key.lower(): key for key in row}
    if wanted is not None:
        return lowered.get(wanted.lower())
    return next((lowered[alias] for alias in aliases if alias in lowered), None)


def row_document(
    path: Path, row_number: int, row: dict[str, Any], *, id_field: str | None, text_field: str | None
) -> Document | IngestError:
    text_key = _find_field(row, text_field, TEXT_FIELDS)
    if text_key is None:
        wanted = repr(text_field) if text_field else " / ".join(TEXT_FIELDS)
        found = ", ".join(repr(key) for key in row)
        return _row_error(path, row_number, f"no criteria column ({wanted}) among the keys found: {found}; "
                                            "name it with --text-field")
    criteria = row[text_key]
    if criteria is not None and not isinstance(criteria, str):
        return _row_error(path, row_number, f"criteria column {text_key!r} is {json_kind(criteria)}, expected text")
    if criteria is None or not criteria.strip():
        return _row_error(path, row_number, f"criteria column {text_key!r} is empty")
    if problem := unicode_problem(criteria):
        return _row_error(path, row_number, f"criteria column {text_key!r} {problem}")
    id_key = _find_field(row, id_field, ID_FIELDS)
    id_value = row.get(id_key) if id_key else None
    if id_value is not None and (isinstance(id_value, bool) or not isinstance(id_value, (str, int))):
        return _row_error(path, row_number, f"id column {id_key!r} is {json_kind(id_value)}, expected text or a number")
    if id_value is not None and (problem := unicode_problem(str(id_value))):
        return _row_error(path, row_number, f"id column {id_key!r} {problem}")
    doc_id = str(id_value).strip() if id_key and id_value not in (None, "") else f"{path.stem}-{row_number}"
    warnings: list[str] = []
    trial = row_metadata(row, warnings)
    if id_key and doc_id.upper().startswith("NCT"):
        trial.nct_id = Evidence(value=doc_id, text=doc_id)
    fmt: Literal["jsonl", "csv"] = "jsonl" if path.suffix.lower() == ".jsonl" else "csv"
    source = Source(path=str(path), format=fmt, sha256=sha256_text(criteria), row=row_number)
    return Document(doc_id, source, criteria, layout="criteria", trial=trial, warnings=warnings)


def _cell_list(value: Any) -> list[str] | None:
    """Lists arrive as JSON arrays, Python-literal strings ("['a', 'b']") or '|'-separated text;
    None when the cell holds something else (an object, a list of objects)."""
    if isinstance(value, list):
        if not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            return None
        return [str(v) for v in value if str(v).strip()]
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        return None
    if value.strip().startswith("["):
        try:
            parsed = ast.literal_eval(value)
            if isinstance(parsed, list):
                return [str(v) for v in parsed if str(v).strip()]
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    return [part.strip() for part in value.split("|") if part.strip()]


def _unreadable(warnings: list[str], key: str, value: Any, expected: str) -> None:
    warnings.append(f"column {key!r} is {json_kind(value)}, expected {expected}: not read")


def row_metadata(row: dict[str, Any], warnings: list[str]) -> Trial:
    """Metadata from the row's columns; a column of the wrong type is skipped with a warning."""
    trial = Trial()
    for name, (aliases, parse) in _SCALARS.items():
        key = _find_field(row, None, aliases)
        raw = row.get(key) if key else None
        if raw in (None, ""):
            continue
        if isinstance(raw, (list, dict)) or (isinstance(raw, str) and unicode_problem(raw)):
            _unreadable(warnings, str(key), raw, "text")
            continue
        value = raw if isinstance(raw, bool) else parse(str(raw))
        if value is not None:
            setattr(trial, name, Evidence(value=value, text=str(raw)))
    phase_key = _find_field(row, None, ("phase", "phases"))
    phase = row[phase_key] if phase_key else None
    phase_texts = [phase] if isinstance(phase, str) else _cell_list(phase) if isinstance(phase, list) else None
    if phase_texts is not None and not any(unicode_problem(text) for text in phase_texts):
        trial.phases = [Evidence(value=p, text=text) for text in phase_texts for p in normalise.phases(text)]
    elif phase not in (None, ""):
        _unreadable(warnings, str(phase_key), phase, "text such as 'Phase 1/Phase 2'")
    for name, aliases in _LISTS.items():
        key = _find_field(row, None, aliases)
        if not key:
            continue
        values = _cell_list(row[key])
        if values is None or any(unicode_problem(v) for v in values):
            _unreadable(warnings, key, row[key], "a list of names or '|'-separated text")
            continue
        setattr(trial, name, [Evidence(value=v, text=v) for v in values])
    return trial
