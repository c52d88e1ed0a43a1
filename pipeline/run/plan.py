"""Planning a run: number every input item, keep this shard's, and key each document by its content.

The bottom of `pipeline.run`: it imports nothing else of the package, so the journal, the outputs
and the runner can all use these types.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, fields

from pipeline.cache import canonical_json
from pipeline.errors import IngestError
from pipeline.ingest import Document
from pipeline.run.shard import Shard


@dataclass
class Failure:
    """One line of errors.jsonl: which input failed, in which stage, why (and the row of a table)."""

    path: str
    stage: str
    error: str
    doc_id: str | None = None
    row: int | None = None

    def line(self) -> str:
        name = f"{self.path} ({self.doc_id})" if self.doc_id and self.doc_id not in self.path else self.path
        return f"{name}: {self.stage}: {self.error}"

    def json_line(self) -> str:
        return json.dumps(vars(self), ensure_ascii=False) + "\n"


@dataclass(slots=True)
class Planned:
    """One input item with its position among all inputs (before sharding).

    The runner keeps one of these per input until the end (to write outputs in input order), so
    the document itself is dropped once it has been processed: a run's memory does not grow with
    the text it has read.
    """

    position: int
    document: Document | None = None
    failure: Failure | None = None
    key: str = ""
    doc_id: str = ""
    path: str = ""  # the source path as this run spells it


def document_key(document: Document) -> str:
    """SHA-256 of everything segmentation reads, so an edited input is never taken from the journal.

    The path counts as an absolute path: `data/x.txt` and `./data/x.txt` or `/home/me/data/x.txt`
    are one document, so a rerun resumes however the input is spelled (the records still carry the
    path as given; see `outputs.respelled`).
    """
    parts = {
        f.name: value.model_dump(mode="json") if hasattr(value, "model_dump") else value
        for f in fields(document)
        for value in [getattr(document, f.name)]
    }
    parts["source"] = {**parts["source"], "path": os.path.abspath(document.source.path)}
    return hashlib.sha256(canonical_json(parts).encode("utf-8")).hexdigest()


def plan(items: Iterable[Document | IngestError], shard: Shard | None,
         claim: Callable[[str, str], str | None]) -> Iterator[Planned]:
    """Number every item, keep this shard's, and turn ingest errors and duplicate ids into failures.

    Lazy: items are read one at a time, so a registry-sized input is never held in memory.
    `claim(doc_id, path)` remembers where an id was first read and returns that path when the id
    was seen before (the runner keeps this on disk: `RunIndex.first_paths`).
    """
    for position, item in enumerate(items):
        name = (item.doc_id or item.path) if isinstance(item, IngestError) else item.doc_id
        if shard is not None and not shard.owns(name):
            continue
        if isinstance(item, IngestError):
            yield Planned(position, failure=Failure(item.path, "ingest", item.message, item.doc_id, item.row))
        elif (first := claim(item.doc_id, item.source.path)) is not None:
            message = f"duplicate doc_id {item.doc_id!r} (first in {first})"
            yield Planned(position, failure=Failure(item.source.path, "ingest", message, item.doc_id, item.source.row))
        else:
            path = sys.intern(item.source.path)  # one string for all the rows of a table
            yield Planned(position, document=item, key=document_key(item), doc_id=item.doc_id, path=path)
