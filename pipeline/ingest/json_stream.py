"""ClinicalTrials.gov JSON read one study at a time, in memory bounded by the largest study.

A registry export is one `{"studies": [...], "nextPageToken": ...}` object of several gigabytes,
so it is never parsed whole. `_Window` keeps a sliding window of the file's text; each study is
decoded on its own with `json.JSONDecoder.raw_decode`, reading more text only while the study is
incomplete. A study that cannot be decoded is skipped by its brackets and strings alone, so the
studies after it are still read (with their own row numbers); when that is impossible (the file
ends inside the study) the error says so.

Shapes, as `json.loads` would read them: a top-level list of studies, an object whose `studies`
member is that list (its other members, such as `nextPageToken`, ignored), or one study object.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal

from pipeline.errors import IngestError
from pipeline.ingest import undecodable_byte

CHUNK_BYTES = 1 << 20  # read at a time; a study longer than this is read in growing steps
STUDIES = "studies"
NOT_STUDIES = "JSON is not a ClinicalTrials.gov study, list of studies or {'studies': [...]}"

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")
_STRUCTURE = re.compile(r'["\[\]{},]')
_STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_NEAR_END = 32  # a decode error this close to the window's end may only mean the value goes on
_STUDY_START = re.compile(r'\{\s*"protocolSection"\s*:')  # never inside a JSON string: its quotes would be escaped


class _Invalid(Exception):
    """A problem at an offset of the text (characters from the start of the file)."""

    def __init__(self, message: str, at: int) -> None:
        super().__init__(message)
        self.at = at


class _TooLarge(Exception):
    pass


class _Window:
    """A sliding window over a UTF-8 stream's text: `text[pos:]` is what is still to be read.

    Text before `pos` is dropped whenever more is read, so memory holds one chunk plus the value
    being decoded. Bytes that are not UTF-8 are kept as lone surrogates (surrogateescape), so the
    study holding one can be reported and the rest read.
    """

    def __init__(self, handle: BinaryIO, chunk_bytes: int) -> None:
        self.handle = handle
        self.chunk = chunk_bytes
        self.decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        self.text = ""
        self.pos = 0
        self.eof = False
        self.started = False
        self.dropped = 0  # characters of text already dropped
        self.dropped_lines = 0  # newlines among them
        self.dropped_column = 0  # characters dropped since the last of them

    def more(self, at_least: int = 0) -> bool:
        """Read at least one more chunk (or `at_least` characters); False when nothing is left."""
        if self.eof:
            return False
        self._drop_read_text()
        raw = self.handle.read(max(self.chunk, at_least))
        if not self.started:
            raw, self.started = raw.removeprefix(codecs.BOM_UTF8), True
        added = self.decoder.decode(raw, final=not raw)
        self.eof = not raw
        self.text += added
        return bool(raw) or bool(added)

    def _drop_read_text(self) -> None:
        done = self.text[:self.pos]
        self.dropped += len(done)
        newlines = done.count("\n")
        if newlines:
            self.dropped_lines += newlines
            self.dropped_column = len(done) - done.rindex("\n") - 1
        else:
            self.dropped_column += len(done)
        self.text, self.pos = self.text[self.pos:], 0

    def peek(self) -> str:
        """The next character that is not JSON whitespace (moving past the whitespace), or '' at the end."""
        while True:
            self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def where(self, pos: int) -> str:
        """`line L column C` of a position of the window, counted from the start of the file."""
        line_start = self.text.rfind("\n", 0, pos) + 1
        line = self.dropped_lines + self.text.count("\n", 0, pos) + 1
        column = pos - line_start + 1 + (self.dropped_column if line_start == 0 else 0)
        return f"line {line} column {column}"

    def invalid(self, pos: int, message: str) -> _Invalid:
        if bad := undecodable_byte(self.text[pos:pos + 1]):
            message = f"not valid UTF-8: byte 0x{bad[1]:02x} at {self.where(pos)}"
        else:
            message = f"invalid JSON at {self.where(pos)}: {message}"
        return _Invalid(message, self.dropped + pos)

    def value(self, max_bytes: int) -> Any:
        """Decode the value at `pos` and move past it, reading more text while it is incomplete.

        Raises `_Invalid` (the window left at the value's start) or `_TooLarge`.
        """
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                if not self._may_go_on(exc):
                    raise self.invalid(exc.pos, exc.msg.removesuffix(" starting at")) from None
            except RecursionError:
                where = self.where(self.pos)
                raise _Invalid(f"JSON nested too deeply to read (at {where})", self.dropped + self.pos) from None
            else:
                if end < len(self.text) or self.eof:  # a number at the window's end may go on
                    return self._checked(value, end, max_bytes)
            if len(self.text) - self.pos > max_bytes:
                raise _TooLarge
            self.more(at_least=len(self.text) - self.pos)  # doubling: a long value is decoded a few times only

    def _may_go_on(self, exc: json.JSONDecodeError) -> bool:
        cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(self.text) - _NEAR_END
        return cut and not self.eof

    def _checked(self, value: Any, end: int, max_bytes: int) -> Any:
        source = self.text[self.pos:end]
        if not source.isascii():
            if bad := undecodable_byte(source):
                raise self.invalid(self.pos + bad[0], "")
            if len(source.encode("utf-8", "surrogatepass")) > max_bytes:
                raise _TooLarge
        elif len(source) > max_bytes:
            raise _TooLarge
        self.pos = end
        return value

    def skip_value(self, study_after: int | None = None) -> Literal["end", "study", "eof"]:
        """Move past the value at `pos` by its brackets and strings alone (for a value that could
        not be decoded), reading on without keeping what it passes. Stops before a `,` or closing
        bracket that belongs to its container ("end"), at a study's start (`{"protocolSection":`)
        beyond the offset `study_after` when one is given, so that garbage with unbalanced brackets
        costs one study and not the rest of the file ("study"), or at the end of the text ("eof")."""
        depth, in_string = 0, False
        while True:
            if in_string:
                self.pos = _STRING_BODY.match(self.text, self.pos).end()  # type: ignore[union-attr]
                if self.pos < len(self.text) and self.text[self.pos] == '"':
                    self.pos, in_string = self.pos + 1, False
                    continue
            elif found := _STRUCTURE.search(self.text, self.pos):
                mark = found.group()
                self.pos = found.start()
                if mark in ",]}" and depth == 0:
                    return "end"
                if mark == "{" and study_after is not None and self.dropped + self.pos >= study_after \
                        and self._at_study():
                    return "study"
                self.pos += 1
                in_string = mark == '"'
                depth += (mark in "[{") - (mark in "]}")
                if depth == 0 and mark in "]}":
                    return "end"
                continue
            else:
                self.pos = len(self.text)
            if not self.more():
                return "eof"

    def _at_study(self) -> bool:
        while len(self.text) - self.pos < _NEAR_END and self.more():
            pass
        return _STUDY_START.match(self.text, self.pos) is not None


class _Studies:
    """Walks the top-level shape and yields (row, study) pairs or errors, in file order."""

    def __init__(self, path: Path, window: _Window, max_bytes: int) -> None:
        self.path, self.window, self.max_bytes = path, window, max_bytes
        self.stopped = False  # the file ended inside a study
        self.at_study = False  # a bad study was skipped up to the start of the next one

    def error(self, message: str, row: int | None = None) -> IngestError:
        return IngestError(str(self.path), f"row {row}: {message}" if row is not None else message, row=row)

    def read(self) -> Iterator[tuple[int, Any] | IngestError]:
        first = self.window.peek()
        try:
            if first == "":
                yield self.error("file is empty")
                return
            if first == "[":
                yield from self.array()
            elif first == "{":
                yield from self.top_object()
            else:
                self.window.value(self.max_bytes)
                yield self.error(NOT_STUDIES)
                return
        except _Invalid as problem:
            yield self.error(str(problem))
            return
        except _TooLarge:
            yield self.error(f"a top-level value is over the {self.max_bytes:,}-byte limit (--max-bytes)")
            return
        if not self.stopped and self.window.peek() != "":
            yield self.error(str(self.window.invalid(self.window.pos, "Extra data")))

    def array(self) -> Iterator[tuple[int, Any] | IngestError]:
        """The elements of the array at `pos`, one a row; after a bad element, the next is read."""
        window = self.window
        window.pos += 1
        row = 0
        if window.peek() == "]":
            window.pos += 1
            return
        while not self.stopped:
            row += 1
            yield self.element(row)
            if self.at_study:  # garbage skipped up to the next study: no comma before it
                self.at_study = False
                continue
            mark = window.peek()
            while mark not in (",", "]", "") and not self.at_study:  # junk where a comma belongs
                problem = window.invalid(window.pos, "Expecting ',' delimiter")
                yield self.skipped(None, f"after row {row}: {problem}", problem.at)
                mark = "" if self.stopped else window.peek()
            if self.at_study:
                self.at_study = False
            elif mark == "]":
                window.pos += 1
                return
            elif mark == "":
                if not self.stopped:
                    yield self.error(f"the file ends inside the list of studies, after row {row} (truncated?)")
                    self.stopped = True
                return
            else:
                window.pos += 1

    def element(self, row: int) -> tuple[int, Any] | IngestError:
        try:
            return row, self.window.value(self.max_bytes)
        except _Invalid as problem:
            return self.skipped(row, str(problem), problem.at + 1)
        except _TooLarge:
            return self.skipped(row, f"study is over the {self.max_bytes:,}-byte limit (--max-bytes)")

    def skipped(self, row: int | None, problem: str, study_after: int | None = None) -> IngestError:
        """The error for a value that could not be read, after moving past it (or stopping).
        After a syntax error reading resumes at the next study found beyond it, if that comes
        before the value's end by its brackets."""
        window = self.window
        start = window.pos
        outcome = window.skip_value(study_after)
        if outcome == "eof":
            self.stopped = True
            return self.error(f"{problem}; the file ends inside this study (truncated?)", row)
        if outcome == "study":
            self.at_study = True
            return self.error(f"{problem}; reading resumed at the next study, {window.where(window.pos)}", row)
        if window.pos == start and window.text[start] == "}":  # a stray brace: skip itself
            window.pos += 1
        return self.error(f"{problem}; reading resumed after it, at {window.where(window.pos)}", row)

    def top_object(self) -> Iterator[tuple[int, Any] | IngestError]:
        """`{"studies": [...], ...}` gives the list's studies; any other object is one study."""
        window = self.window
        window.pos += 1
        members: dict[str, Any] = {}
        size, too_large, found = 0, False, False
        mark = window.peek()
        while mark != "}":
            if mark != '"':
                raise window.invalid(window.pos, "Expecting property name enclosed in double quotes")
            key = window.value(self.max_bytes)
            if window.peek() != ":":
                raise window.invalid(window.pos, "Expecting ':' delimiter")
            window.pos += 1
            if key == STUDIES and not found and window.peek() == "[":
                found = True
                yield from self.array()
                if self.stopped:
                    return
            else:
                start = window.pos
                try:
                    members[key] = window.value(self.max_bytes)
                    size += window.pos - start
                except _TooLarge:
                    too_large = True
                    if window.skip_value() == "eof":
                        raise _Invalid("the file ends inside a value over the --max-bytes limit (truncated?)",
                                       window.dropped + window.pos) from None
                too_large = too_large or size > self.max_bytes
            mark = window.peek()
            if mark == ",":
                window.pos += 1
                mark = window.peek()
            elif mark != "}":
                raise window.invalid(window.pos, "Expecting ',' delimiter")
        window.pos += 1
        if not found:
            yield from self.one_study(members, too_large)

    def one_study(self, members: dict[str, Any], too_large: bool) -> Iterator[tuple[int, Any] | IngestError]:
        if STUDIES in members:
            studies = members[STUDIES]
            if isinstance(studies, dict):
                yield 1, studies
            else:
                yield self.error(NOT_STUDIES)
        elif too_large:
            yield self.error(f"study is over the {self.max_bytes:,}-byte limit (--max-bytes)", 1)
        else:
            yield 1, members


def iter_studies(path: Path, handle: BinaryIO, max_bytes: int, chunk_bytes: int = CHUNK_BYTES
                 ) -> Iterator[tuple[int, Any] | IngestError]:
    """(row, study) for every study of a ClinicalTrials.gov JSON stream, or an error naming the row."""
    yield from _Studies(path, _Window(handle, chunk_bytes), max_bytes).read()
