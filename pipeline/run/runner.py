"""The batch loop: plan, skip what the journal already holds, extract the rest concurrently.

Documents are extracted by a thread pool (the backends are synchronous and spend their time
waiting on a model), at most `config.concurrency` at once, started no faster than the rate
limits allow. Each finished record is journaled (fsync'ed) before it counts as done, and the
final files are assembled from the journal in input order: a run killed at any moment and
rerun gives the same bytes as one that was never interrupted.
"""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipeline.cache import CacheMiss, ModelCache, canonical_json, collect_keys, open_cache
from pipeline.config import RunConfig
from pipeline.errors import ExtractError, TrialstructError, UnexpectedError, in_stage
from pipeline.extract import Backend, Usage, load_backend, resolve_backend_name
from pipeline.ingest import Document, iter_documents
from pipeline.run.journal import Journal
from pipeline.run.limits import RateLimiter
from pipeline.run.outputs import RunResult, write_run
from pipeline.run.plan import Failure, Planned, plan
from pipeline.run.progress import RunProgress
from pipeline.run.shard import Shard
from pipeline.schema import SCHEMA_VERSION, TrialRecord, first_error
from pipeline.segment import segment


@dataclass
class Outcome:
    planned: Planned
    record_line: str | None = None
    failure: Failure | None = None
    offline_miss: bool = False
    usage: Usage = field(default_factory=Usage)
    keys: set[str] = field(default_factory=set)


def config_hash(config: RunConfig, backend: Backend) -> str:
    """Identity of everything that decides a record's content (backend, model, prompt, settings)."""
    settings = config.output_settings()
    identity = {"settings": settings, "provenance": backend.provenance().model_dump(mode="json"),
                "schema": SCHEMA_VERSION}
    return hashlib.sha256(canonical_json(identity).encode("utf-8")).hexdigest()[:16]


def process_document(document: Document, backend: Backend) -> tuple[TrialRecord, Usage]:
    """One document through segment and extract; errors carry the stage that raised them."""
    record, _, usage = _process(document, backend)
    return record, usage


def _process(document: Document, backend: Backend) -> tuple[TrialRecord, str, Usage]:
    """The record, its JSON line and its cost. The record contract (every span exact, ids unique,
    every field of its type) is checked here, once, on whatever the backend returned."""
    with in_stage("segment"):
        segmented = segment(document)
    with in_stage("extract"):
        extraction = backend.extract(segmented)
        line = extraction.record.model_copy(update={"provenance": backend.provenance()}).model_dump_json()
        try:
            record = TrialRecord.model_validate_json(line)
        except ValidationError as exc:
            raise ExtractError(f"backend {backend.name!r} returned an invalid record: {first_error(exc)}") from exc
    return record, line, extraction.usage


def process(planned: Planned, backend: Backend) -> Outcome:
    """`_process` for the pool: any exception becomes this document's failure, named by its stage."""
    document = planned.document
    assert document is not None
    with collect_keys() as keys:
        try:
            _, line, usage = _process(document, backend)
            return Outcome(planned, record_line=line, usage=usage, keys=set(keys))
        except Exception as exc:  # one bad document must not stop the batch
            stage = exc.stage if isinstance(exc, TrialstructError) else "run"
            message = str(exc) if isinstance(exc, UnexpectedError) else f"{type(exc).__name__}: {exc}"
            failure = Failure(document.source.path, stage, message.splitlines()[0], document.doc_id)
            return Outcome(planned, failure=failure, offline_miss=_caused_by(exc, CacheMiss),
                           usage=getattr(exc, "usage", None) or Usage(), keys=set(keys))


def _caused_by(exc: BaseException | None, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:  # a chain can loop back on itself
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@contextmanager
def stop_on_sigint() -> Iterator[threading.Event]:
    """The first Ctrl-C sets the event (finish what is in flight, then stop); a second one raises
    KeyboardInterrupt at once (finished documents are already journaled)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def first(signum: int, frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = signal.signal(signal.SIGINT, first)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


class Runner:
    """One run into one output directory."""

    def __init__(self, config: RunConfig, outdir: Path, shard: Shard | None, show_progress: bool) -> None:
        self.config = config
        self.outdir = outdir
        self.shard = shard
        self.show_progress = show_progress
        self.backend = load_backend(config)
        self.cache: ModelCache = open_cache(config)
        self.limiter = RateLimiter(config.requests_per_minute, config.tokens_per_minute)
        self.result = RunResult(backend=resolve_backend_name(config))
        self.failures: dict[int, Failure] = {}
        self.offline_misses: set[int] = set()

    def run(self, inputs: list[Path]) -> RunResult:
        started, started_at = time.perf_counter(), datetime.now(UTC)
        hits, misses = self.cache.hits, self.cache.misses
        items = list(iter_documents(inputs, id_field=self.config.id_field, text_field=self.config.text_field,
                                    max_bytes=self.config.max_bytes))
        planned = plan(items, self.shard)
        self.outdir.mkdir(parents=True, exist_ok=True)
        with Journal(self.outdir, config_hash(self.config, self.backend)) as journal:
            documents = [p for p in planned if p.document is not None]
            todo = [p for p in documents if p.key not in journal.done]
            self.failures = {p.position: p.failure for p in planned if p.failure is not None}
            self.result.documents, self.result.resumed = len(documents), len(documents) - len(todo)
            self.extract_all(todo, journal)
            self.result.finished = sum(p.key in journal.done for p in documents)
            self.result.offline_missing = [self.failures[position] for position in sorted(self.offline_misses)]
            self.result.cache_hits = self.cache.hits - hits
            self.result.cache_misses = self.cache.misses - misses
            self.result.seconds = time.perf_counter() - started
            write_run(self.outdir, planned, journal, self.failures, self.result,
                      self.manifest_context(inputs, started_at, journal.path.stem))
        return self.result

    def extract_all(self, todo: list[Planned], journal: Journal) -> None:
        width = max(1, self.config.concurrency)
        queue = deque(todo)
        pool = ThreadPoolExecutor(width, thread_name_prefix="extract")
        try:
            with stop_on_sigint() as stop, RunProgress(self.result.documents, self.result.resumed,
                                                       self.show_progress) as bar:
                self.drain(queue, pool, journal, stop, bar)
        except KeyboardInterrupt:  # the second Ctrl-C: leave the documents in flight behind
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        self.result.interrupted = bool(queue)

    def drain(self, queue: deque[Planned], pool: ThreadPoolExecutor, journal: Journal, stop: threading.Event,
              bar: RunProgress) -> None:
        """Keep `concurrency` documents in flight, within the rate limits, until done or stopped."""
        width = max(1, self.config.concurrency)
        pending: set[Future[Outcome]] = set()
        while True:
            while queue and len(pending) < width and not stop.is_set() and self.limiter.delay() == 0:
                pending.add(pool.submit(process, queue.popleft(), self.backend))
            if not pending:
                if stop.is_set() or not queue:
                    return
                stop.wait(min(self.limiter.delay(), 0.25))
                continue
            done, pending = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in done:
                self.finish(future.result(), journal, bar)

    def finish(self, outcome: Outcome, journal: Journal, bar: RunProgress) -> None:
        usage = outcome.usage
        self.result.usage.add(usage)
        self.limiter.charge(usage.calls, usage.prompt_tokens + usage.completion_tokens)
        if outcome.record_line is not None:
            journal.append(outcome.planned.key, outcome.record_line, outcome.keys, asdict(usage))
        elif outcome.failure is not None:
            self.failures[outcome.planned.position] = outcome.failure
            if outcome.offline_miss:
                self.offline_misses.add(outcome.planned.position)
        bar.advance(usage.prompt_tokens + usage.completion_tokens, usage.cache_hits, outcome.failure is not None)

    def manifest_context(self, inputs: list[Path], started_at: datetime, journal_id: str) -> dict[str, Any]:
        return {
            "inputs": [str(p) for p in inputs],
            "started": started_at.isoformat(timespec="seconds"),
            "config": self.config.public_dict(),
            "config_hash": journal_id,
            "provenance": self.backend.provenance().model_dump(mode="json"),
            "shard": {"index": self.shard.index, "count": self.shard.count} if self.shard else None,
            "cache": {"mode": self.cache.mode.value, "path": str(self.cache.path) if self.cache.path else None},
        }


def run(inputs: list[Path], outdir: Path, config: RunConfig, *, shard: Shard | None = None,
        show_progress: bool = False) -> RunResult:
    """Process `inputs` into `outdir`, resuming whatever an earlier run with the same settings finished."""
    return Runner(config, outdir, shard, show_progress).run(inputs)
