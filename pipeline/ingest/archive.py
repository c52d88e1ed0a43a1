"""Zip archives of inputs, such as ClinicalTrials.gov's bulk download `ctg-studies.json.zip` (one
JSON file per study).

Members are read one at a time, in name order (the order a directory of the same files is walked),
each by the reader of its suffix, and named `archive.zip!/NCT01234567.json` in documents and
errors. Nothing is extracted to disk. Hidden members and directories are passed over like hidden
files; members of other types are counted for the message when nothing is readable. A member whose
name is odd (control characters, an absolute path, `..`, empty parts), that is encrypted, a
symbolic link, an archive itself or a second member of the same name gives one error and is not read.

Zip bombs: a text page is read with a bounded read (over `max_bytes` it is an error, as a file);
tables and CT.gov JSON are streamed, a row or a study limited by `max_bytes` as in a plain file,
and what such a member decompresses to is counted while it is read (the sizes in its header are
not trusted): reading stops past `max(max_bytes, EXPANSION_LIMIT x its compressed size)`.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, cast

from pipeline.errors import IngestError
from pipeline.ingest import (
    ARCHIVE_SUFFIXES,
    DOCUMENT_SUFFIXES,
    TEXT_SUFFIXES,
    Document,
    binary_problem,
    nothing_found,
    open_input,
    read_stream,
)

EXPANSION_LIMIT = 100  # real JSON and text compress 5-20x; a zip bomb expands about 1,000x
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")


class _Expanded(IngestError):
    """A member decompressed past its limit (raised from inside the reader, reported by `read_zip`)."""


class _Counted(io.RawIOBase):
    """A member's decompressed bytes, counted as they are read; past `limit` reading fails."""

    def __init__(self, member: IO[bytes], limit: int, name: str, why: str) -> None:
        self.member, self.limit, self.name, self.why = member, limit, name, why
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.member.read(min(len(buffer), self.limit + 1 - self.count))
        self.count += len(data)
        if self.count > self.limit:
            raise _Expanded(self.name, f"member decompresses to more than {self.limit:,} bytes ({self.why}): "
                                       "reading stopped")
        buffer[:len(data)] = data
        return len(data)


def read_zip(path: Path, max_bytes: int, *, id_field: str | None, text_field: str | None
             ) -> Iterator[Document | IngestError]:
    """The documents of every readable member, in name order, and one error per member that is not."""
    handle = open_input(path, None)
    if isinstance(handle, IngestError):
        yield handle
        return
    with handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
            yield IngestError(str(path), f"not a readable zip archive: {exc}")
            return
        with archive:
            skipped: Counter[str] = Counter()
            listed = 0
            for info, problem in _members(archive, skipped):
                listed += 1
                name = f"{path}!/{info.filename}"
                if problem is not None:
                    yield IngestError(name, problem)
                    continue
                yield from _read_member(archive, info, Path(name), max_bytes, id_field=id_field,
                                        text_field=text_field)
            if not listed:
                yield IngestError(str(path), nothing_found("archive", DOCUMENT_SUFFIXES, skipped))


def _members(archive: zipfile.ZipFile, skipped: Counter[str]) -> Iterator[tuple[zipfile.ZipInfo, str | None]]:
    """Each member to read, with the reason it cannot be read (None when it can), in name order."""
    previous = None  # sorting keeps members of one name together, in archive order
    for info in sorted(archive.infolist(), key=lambda member: member.filename.split("/")):
        name, repeated, previous = info.filename, info.filename == previous, info.filename
        if problem := _odd_name(name):
            yield info, f"member name {name!r} {problem}: not read"
            continue
        if info.is_dir() or any(part.startswith(".") for part in name.split("/")):
            continue
        suffix = PurePosixPath(name).suffix.lower()
        if suffix not in DOCUMENT_SUFFIXES | ARCHIVE_SUFFIXES:
            skipped[suffix or "(no suffix)"] += 1
            continue
        yield info, _unreadable(info, suffix, repeated)


def _odd_name(name: str) -> str | None:
    if _CONTROL.search(name):
        return "holds a control character"
    if name.startswith("/") or _DRIVE.match(name) or "\\" in name:
        return "is an absolute path or holds a backslash"
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "holds an empty, '.' or '..' part"
    return None


def _unreadable(info: zipfile.ZipInfo, suffix: str, repeated: bool) -> str | None:
    if repeated:
        return "a second member of the same name: not read"
    if suffix in ARCHIVE_SUFFIXES:
        return "an archive inside the archive: not read"
    if info.flag_bits & 0x1:
        return "member is encrypted: not read"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "member is a symbolic link: not read"
    return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, max_bytes: int, *,
                 id_field: str | None, text_field: str | None) -> Iterator[Document | IngestError]:
    limit = max(max_bytes, EXPANSION_LIMIT * info.compress_size)
    try:
        with archive.open(info) as member:
            # A text page is read with a bounded read (at most max_bytes + 1 bytes), so it needs no count.
            handle = cast(BinaryIO, member) if path.suffix.lower() in TEXT_SUFFIXES else io.BufferedReader(
                _Counted(member, limit, str(path), f"{EXPANSION_LIMIT} times its compressed size: a zip bomb?"))
            if binary := binary_problem(path, handle):
                yield binary
                return
            yield from read_stream(path, handle, max_bytes, id_field=id_field, text_field=text_field)
    except _Expanded as expanded:
        yield IngestError(expanded.path, expanded.message)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        yield IngestError(str(path), f"corrupt or unreadable member: {exc}")
