"""Everything a batch run knows, in OUTDIR/batch/, each file written atomically.

OUTDIR/batch/state.json          inputs, settings (no secrets), and one entry per request file: its
                                 upload, its batch, the batch's status, counts and usage
OUTDIR/batch/requests-NNN.jsonl  the Batch API input files, exactly as uploaded
OUTDIR/batch/results/            output and error files of finished batches, as downloaded
OUTDIR/batch/pending.jsonl       the requests the last pass could not answer, before they are split into files
OUTDIR/batch/work/               the passes' own run (journal, partial outputs); OUTDIR gets the final run

An action on the API (upload, create) is recorded as started before it is taken and its result
right after, so a process killed in between finds the half-done action on rerun and looks for its
result on the server instead of repeating it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.batch.transport import Answered
from pipeline.errors import RunError
from pipeline.files import atomic_write, read_json, remove_stray_temporaries, write_json

STATE = "state.json"
RESULTS = "results"
WORK = "work"
SPOOL = "pending.jsonl"
MAX_REQUESTS = 50_000  # the Batch API's limits for one input file
MAX_FILE_BYTES = 200_000_000
TERMINAL = ("completed", "failed", "expired", "cancelled")
FAILURE_LIMIT = 3  # a request that failed this often is answered with its failure (its document fails)
BATCH_DISCOUNT = 0.5  # Batch API prices relative to synchronous ones


@dataclass
class RequestFile:
    """One uploaded input file and the batch made of it."""

    name: str
    round: int
    requests: int
    bytes: int
    upload_started: bool = False
    file_id: str | None = None
    create_started: bool = False
    batch_id: str | None = None
    status: str | None = None
    request_counts: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    collected: bool = False
    usage: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def in_flight(self) -> bool:
        """Sent (or about to be) and not yet come back: its requests must not be sent again."""
        return not self.collected


@dataclass
class BatchState:
    directory: Path
    inputs: list[str]
    settings: dict[str, Any]
    cwd: str = field(default_factory=os.getcwd)  # relative inputs are read from here
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    files: list[RequestFile] = field(default_factory=list)
    complete: bool = False

    @classmethod
    def load(cls, directory: Path) -> BatchState:
        data = read_json(directory / STATE, "no batch run here: start one with `trialstruct batch submit`")
        files = [RequestFile(**entry) for entry in data.pop("files")]
        data.pop("batch_discount", None)
        return cls(directory=directory, files=files, **data)

    def save(self) -> None:
        data = asdict(self)
        del data["directory"]
        write_json(self.directory / STATE, {**data, "batch_discount": BATCH_DISCOUNT})

    def input_paths(self) -> list[Path]:
        """The inputs as `submit` named them (so records name them alike), from the same directory."""
        if os.getcwd() != self.cwd and not all(Path(p).is_absolute() for p in self.inputs):
            raise RunError(f"{self.directory}: the inputs were given as relative paths; run this from {self.cwd}")
        return [Path(p) for p in self.inputs]

    @property
    def rounds(self) -> int:
        return max((f.round for f in self.files), default=0)

    def request_ids(self, files: Iterable[RequestFile]) -> set[str]:
        return {line["custom_id"] for f in files for line in self.read_requests(f)}

    def read_requests(self, entry: RequestFile) -> Iterator[dict[str, Any]]:
        with (self.directory / entry.name).open(encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)

    def write_requests(self, spool: Path, max_requests: int = MAX_REQUESTS,
                       max_bytes: int = MAX_FILE_BYTES) -> list[RequestFile]:
        """The next round's input files, split from the `spool` of pending request lines, recorded."""
        round_ = self.rounds + 1
        written = []
        with spool.open(encoding="utf-8") as lines:
            for number, chunk in enumerate(split_lines(lines, max_requests, max_bytes), start=1):
                name = f"requests-{round_:03d}-{number:03d}.jsonl"
                atomic_write(self.directory / name, chunk)
                written.append(RequestFile(name, round_, len(chunk), sum(len(line.encode()) for line in chunk)))
        self.files += written
        self.save()
        return written

    def usage(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for entry in self.files:
            for name, value in entry.usage.items():
                total[name] = total.get(name, 0) + value
        return total

    def summary(self) -> dict[str, Any]:
        """The `batch` key of the run manifest."""
        return {
            "rounds": self.rounds,
            "requests": sum(f.requests for f in self.files),
            "batches": [{"name": f.name, "batch_id": f.batch_id, "status": f.status, "requests": f.requests,
                         "request_counts": f.request_counts, "usage": f.usage} for f in self.files],
            "usage": self.usage(),
            "batch_discount": BATCH_DISCOUNT,
        }


def open_state(directory: Path, inputs: list[str], settings: dict[str, Any]) -> BatchState:
    """The state in `directory`, or a new one for these inputs and settings."""
    directory.mkdir(parents=True, exist_ok=True)
    remove_stray_temporaries(directory, [STATE])
    if (directory / STATE).exists():
        return BatchState.load(directory)
    state = BatchState(directory, inputs, settings)
    state.save()
    return state


def split_lines(lines: Iterable[str], max_requests: int, max_bytes: int) -> Iterator[list[str]]:
    """Consecutive chunks of at most `max_requests` lines and `max_bytes` bytes (a longer line alone)."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        length = len(line.encode())
        if chunk and (len(chunk) >= max_requests or size + length > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(line)
        size += length
    if chunk:
        yield chunk


class Results(Answered):
    """The downloaded output and error lines, indexed by custom_id (answers read from disk when served).

    An id's first successful answer wins (duplicates are tolerated); lines naming an id never sent
    are counted and ignored. A request with no answer is pending again, unless it failed
    `FAILURE_LIMIT` times: then its last failure is served, and its document fails with it.
    """

    def __init__(self, directory: Path, sent: set[str]) -> None:
        self.answers: dict[str, tuple[Path, int]] = {}
        self.failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.unknown: set[str] = set()
        self.duplicates = 0
        for path in sorted((directory / RESULTS).glob("*.jsonl")):
            self._index(path, sent)

    def _index(self, path: Path, sent: set[str]) -> None:
        with path.open("rb") as stream:
            offset = 0
            for raw in stream:
                line = json.loads(raw)
                custom_id = line.get("custom_id")
                response = line.get("response") or {}
                if custom_id not in sent:
                    self.unknown.add(str(custom_id))
                elif response.get("status_code") == 200:
                    self.duplicates += custom_id in self.answers
                    self.answers.setdefault(custom_id, (path, offset))
                else:
                    failure = response.get("body") or {"error": line.get("error") or {"message": "no response"}}
                    self.failures.setdefault(custom_id, []).append((response.get("status_code") or 500, failure))
                offset += len(raw)

    def get(self, custom_id: str) -> tuple[int, dict[str, Any]] | None:
        if custom_id in self.answers:
            path, offset = self.answers[custom_id]
            with path.open("rb") as stream:
                stream.seek(offset)
                return 200, json.loads(stream.readline())["response"]["body"]
        failures = self.failures.get(custom_id, [])
        return failures[-1] if len(failures) >= FAILURE_LIMIT else None


def output_usage(path: Path, sent: set[str]) -> dict[str, int]:
    """Tokens of the answers in one downloaded output file, each request of `sent` counted once."""
    total = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0}
    seen: set[str] = set()
    with path.open(encoding="utf-8") as lines:
        for line in map(json.loads, lines):
            custom_id = line.get("custom_id")
            if custom_id not in sent or custom_id in seen:
                continue
            seen.add(custom_id)
            usage = ((line.get("response") or {}).get("body") or {}).get("usage") or {}
            total["requests"] += 1
            total["prompt_tokens"] += usage.get("prompt_tokens") or 0
            total["completion_tokens"] += usage.get("completion_tokens") or 0
    return total
