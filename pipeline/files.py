"""Writing files so that a crash, a kill or a full disk never leaves a half-written one.

A leaf module: it imports nothing of the pipeline but the error root, so every stage can use it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pipeline.errors import OutputError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


FILE_MODE = 0o666 & ~_umask()
TEMP_SUFFIX = ".tmp"


def temp_prefix(path: Path) -> str:
    """Temporary files for `path` start with this, so a later run can find and remove strays."""
    return f".{path.name}."


def atomic_write(path: Path, content: str | Iterable[str]) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over `path`.

    Readers see the old file or the new one, never a mix. A failure (full disk, read-only
    directory) removes the temporary file, leaves `path` as it was and raises `OutputError`.
    """
    temporary: str | None = None
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=TEMP_SUFFIX)
        os.fchmod(handle, FILE_MODE)
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            for chunk in [content] if isinstance(content, str) else content:
                stream.write(chunk)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        _discard(temporary)
        raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from exc
    except BaseException:
        _discard(temporary)
        raise


def _discard(temporary: str | None) -> None:
    if temporary is not None:
        Path(temporary).unlink(missing_ok=True)


def remove_stray_temporaries(directory: Path, names: Iterable[str]) -> int:
    """Delete the temporary files a killed `atomic_write` of `directory/name` left; returns how many."""
    removed = 0
    for name in names:
        for stray in directory.glob(f"{temp_prefix(directory / name)}*{TEMP_SUFFIX}"):
            stray.unlink(missing_ok=True)
            removed += 1
    return removed


def write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    atomic_write(path, json.dumps(data, indent=indent, ensure_ascii=False) + "\n")


def read_json(path: Path, what: str = "JSON file") -> Any:
    """Parsed JSON; a missing or malformed file is one line naming it."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OutputError(f"{path}: missing ({what})") from None
    except json.JSONDecodeError as exc:
        raise OutputError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
