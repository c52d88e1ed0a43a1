"""The batch loop: plan, skip what the journal already holds, extract the rest concurrently.

Inputs stream through one at a time. CPU-bound backends extract in worker processes (each
document under a deadline), model backends in a thread pool (they spend their time waiting on a
model); either way a bounded number of documents is in flight, started no faster than the rate
limits allow. Each finished record is journaled before it counts as done, and the final files
are assembled from the journal in input order: a run killed at any moment and rerun gives the
same bytes as one that was never interrupted.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from pydantic_core import PydanticSerializationError

from pipeline.cache import CacheMiss, ModelCache, canonical_json, collect_keys, open_cache
from pipeline.config import RunConfig
from pipeline.errors import ExtractError, OutputError, TrialstructError, UnexpectedError, caused_by, in_stage
from pipeline.extract import Backend, Usage, load_backend, resolve_backend_name
from pipeline.files import remove_stray_temporaries
from pipeline.ingest import Document, iter_documents
from pipeline.run.journal import Journal
from pipeline.run.limits import RateLimiter
from pipeline.run.outputs import OUTPUT_FILES, RECORDS, RunResult, write_run
from pipeline.run.plan import Failure, Planned, plan
from pipeline.run.progress import RunProgress
from pipeline.run.shard import Shard
from pipeline.schema import SCHEMA_VERSION, TrialRecord
from pipeline.segment import segment

P = ParamSpec("P")
T = TypeVar("T")


@dataclass
class Outcome:
    planned: Planned
    record_line: str | None = None
    failure: Failure | None = None
    offline_miss: bool = False
    usage: Usage = field(default_factory=Usage)
    keys: set[str] = field(default_factory=set)
    counts: tuple[int, int, int] = (0, 0, 0)
    warnings: tuple[str, ...] = ()


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
    """The record, its JSON line and its cost.

    The record contract is checked here, once, on whatever the backend returned (backends may
    build records with `model_copy`, which skips validation): every span exact and every id
    unique (`check_contract`), every field of its declared type (serialising refuses any other).
    """
    with in_stage("segment"):
        segmented = segment(document)
    with in_stage("extract"):
        extraction = backend.extract(segmented)
        record = extraction.record.model_copy(update={"provenance": backend.provenance()})
        try:
            line = record.model_dump_json(warnings="error")
            record.check_contract()
        except (ValueError, TypeError, PydanticSerializationError) as exc:
            problem = " ".join(str(exc).split())[:400]
            raise ExtractError(f"backend {backend.name!r} returned an invalid record: {problem}") from exc
    return record, line, extraction.usage


def process(planned: Planned, backend: Backend) -> Outcome:
    """`_process` for the pool: any exception becomes this document's failure, named by its stage."""
    document = planned.document
    assert document is not None
    with collect_keys() as keys:
        try:
            record, line, usage = _process(document, backend)
            counts = (len(record.criteria), len(record.entities()), len(record.warnings))
            return Outcome(planned, record_line=line, usage=usage, keys=set(keys), counts=counts,
                           warnings=tuple(record.warnings))
        except Exception as exc:  # one bad document must not stop the batch
            return Outcome(planned, failure=_failure(document, exc), offline_miss=caused_by(exc, CacheMiss),
                           usage=getattr(exc, "usage", None) or Usage(), keys=set(keys))


def _failure(document: Document, exc: Exception) -> Failure:
    """The errors.jsonl line of a document that failed: the stage that raised, one line of why."""
    stage = exc.stage if isinstance(exc, TrialstructError) else "run"
    message = str(exc) if isinstance(exc, UnexpectedError) else f"{type(exc).__name__}: {exc}"
    return Failure(document.source.path, stage, message.splitlines()[0], document.doc_id, document.source.row)


class DocumentTimeout(TrialstructError):
    """A document took longer than --document-timeout (reported by the runner, whose deadline it is)."""

    stage = "run"


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise DocumentTimeout in this (main) thread once `seconds` have passed. Elsewhere, where
    signals cannot be received, there is no deadline."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def out_of_time(signum: int, frame: object) -> None:
        raise DocumentTimeout(f"took longer than {seconds:g} s (--document-timeout); the run went on")

    previous = signal.signal(signal.SIGALRM, out_of_time)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def process_within(planned: Planned, backend: Backend, seconds: float) -> Outcome:
    """`process` with a deadline: a document that runs away (a pathological input) fails alone."""
    assert planned.document is not None
    try:
        with deadline(seconds):
            return process(planned, backend)
    except DocumentTimeout as exc:  # fired outside the document's own guard
        return Outcome(planned, failure=_failure(planned.document, exc))


def usable_cores(cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: those it is pinned to (taskset, cpusets), fewer if a
    container's CPU quota (cgroup v2 `cpu.max`, "quota period") allows less; one process per core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text(encoding="ascii").split()
        if quota != "max":
            cores = min(cores, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cores)


class InlineExecutor(Executor):
    """One worker needs no pool: each document is processed when submitted, in this process (no
    copying of documents and records between processes)."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


CHUNK = 8  # documents per task sent to a worker process: a round trip per chunk, not per document
_WORKER_BACKEND: Backend | None = None
_WORKER_DEADLINE = 0.0


def _start_worker(backend: Backend, seconds: float) -> None:
    """In a worker process: keep the backend (inherited, already loaded), leave signals to the
    parent (it finishes or abandons the documents in flight) and end when the parent is gone, even
    killed with SIGKILL, so no orphan is left holding the run's files or pipes."""
    global _WORKER_BACKEND, _WORKER_DEADLINE
    _WORKER_BACKEND, _WORKER_DEADLINE = backend, seconds
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="parent-watch").start()


def _exit_with_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.2)
    os._exit(1)


def process_each(chunk: list[Planned], task: Callable[[Planned], Outcome]) -> list[Outcome]:
    """A chunk of documents as one task: each still under its own deadline, failing alone."""
    return [task(planned) for planned in chunk]


def _process_in_worker(planned: Planned) -> Outcome:
    assert _WORKER_BACKEND is not None
    outcome = process_within(planned, _WORKER_BACKEND, _WORKER_DEADLINE)
    outcome.planned.document = None  # not sent back: the parent has it already
    return outcome


@dataclass
class Tasks:
    """The pool documents are extracted in, and what is in flight there."""

    pool: Executor
    width: int  # chunks in flight at most
    task: Callable[[list[Planned]], list[Outcome]]
    chunk_size: int
    pending: dict[Future[list[Outcome]], list[Planned]] = field(default_factory=dict)


class Stop:
    """Set by the first SIGINT or SIGTERM: finish the documents in flight, write what is done, stop.

    A second SIGINT raises KeyboardInterrupt at once and a second SIGTERM ends the process (the
    finished documents are journaled either way, so a rerun resumes).
    """

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None

    def is_set(self) -> bool:
        return self.event.is_set()

    def wait(self, seconds: float) -> None:
        self.event.wait(seconds)

    def receive(self, signum: int, frame: object) -> None:
        self.signal = signum
        self.event.set()
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)


@contextmanager
def stop_on_signals() -> Iterator[Stop]:
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {signum: signal.signal(signum, stop.receive) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Runner:
    """One run into one output directory, streaming: inputs are read one at a time, at most
    `concurrency` documents are in flight, and only a small `Planned` per input is kept."""

    def __init__(self, config: RunConfig, outdir: Path, shard: Shard | None, show_progress: bool,
                 limit: int | None = None) -> None:
        self.config = config
        self.outdir = outdir
        self.shard = shard
        self.limit = limit
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
        items = iter_documents(inputs, id_field=self.config.id_field, text_field=self.config.text_field,
                               max_bytes=self.config.max_bytes)
        _make_outdir(self.outdir)
        remove_stray_temporaries(self.outdir, OUTPUT_FILES)
        with Journal(self.outdir, config_hash(self.config, self.backend), self.outdir / RECORDS) as journal:
            self.extract_all(self.limited(plan(items, self.shard, journal.index.first_paths.claim)), journal)
            self.result.offline_missing = [self.failures[position] for position in sorted(self.offline_misses)]
            self.result.cache_hits = self.cache.hits - hits
            self.result.cache_misses = self.cache.misses - misses
            self.result.seconds = time.perf_counter() - started
            write_run(self.outdir, journal, self.failures, self.result,
                      self.manifest_context(inputs, started_at, journal.path.stem))
        return self.result

    def limited(self, stream: Iterator[Planned]) -> Iterator[Planned]:
        """The planned inputs up to the `limit`-th document (failed inputs do not count)."""
        documents = 0
        for planned in stream:
            if self.limit is not None and documents >= self.limit:
                return
            documents += planned.failure is None
            yield planned

    def executor(self) -> Tasks:
        """The pool, how many tasks to keep in flight, the task to give it, and how many documents
        make one task.

        CPU-bound backends run in worker processes (one per core by default), forked after the
        backend is loaded so its lexicon is shared, `CHUNK` documents per task (one round trip
        between processes per chunk), or in this process when there is one worker; model backends
        wait on I/O, so threads do, a document per task.
        """
        cpu_bound = getattr(self.backend, "cpu_bound", False)  # optional for plugins: I/O-bound unless said
        if cpu_bound or (self.config.workers or 1) > 1:
            workers = self.config.workers or usable_cores()
            if workers == 1:
                inline = partial(process_within, backend=self.backend, seconds=self.config.document_timeout)
                return Tasks(InlineExecutor(), 1, partial(process_each, task=inline), 1)
            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                       initializer=_start_worker, initargs=(self.backend, self.config.document_timeout))
            return Tasks(pool, 2 * workers, partial(process_each, task=_process_in_worker), CHUNK)
        width = max(1, self.config.concurrency)
        threads = ThreadPoolExecutor(width, thread_name_prefix="extract")
        return Tasks(threads, width, partial(process_each, task=partial(process, backend=self.backend)), 1)

    def extract_all(self, stream: Iterator[Planned], journal: Journal) -> None:
        """Process the planned inputs in order of arrival, noting each in the run's index (the
        outputs are assembled from it in input order)."""
        tasks = self.executor()
        try:
            with stop_on_signals() as stop, RunProgress(self.show_progress) as bar:
                self.feed(stream, tasks, journal, stop, bar)
                self.result.interrupted_by = stop.signal
        except BaseException:  # a second Ctrl-C, a full disk: leave the documents in flight behind
            tasks.pool.shutdown(wait=False, cancel_futures=True)
            raise
        tasks.pool.shutdown()

    def feed(self, stream: Iterator[Planned], tasks: Tasks, journal: Journal, stop: Stop, bar: RunProgress) -> None:
        """Keep `tasks.width` chunks of documents in flight, within the rate limits, until the inputs
        end or a signal stops the run (the chunks in flight are then finished, nothing new is started)."""
        chunk: list[Planned] = []
        for planned in stream:
            if stop.is_set():
                break
            if planned.failure is not None:
                self.failures[planned.position] = planned.failure
                bar.advance(error=True)
                continue
            journal.index.add_input(planned)
            self.result.documents += 1
            if planned.key in journal.done:
                planned.document = None
                self.result.resumed += 1
                self.result.finished += 1
                bar.advance()
                continue
            chunk.append(planned)
            if len(chunk) == tasks.chunk_size:
                self.submit(chunk, tasks, journal, stop, bar)
                chunk = []
        if chunk:
            self.submit(chunk, tasks, journal, stop, bar)
        while tasks.pending:
            self.harvest(tasks, journal, bar, stop, timeout=0.25)

    def submit(self, chunk: list[Planned], tasks: Tasks, journal: Journal, stop: Stop, bar: RunProgress) -> None:
        """Start a chunk once there is room for it and the rate limits allow (not at all once stopped)."""
        while (len(tasks.pending) >= tasks.width or self.limiter.delay() > 0) and not stop.is_set():
            self.harvest(tasks, journal, bar, stop, timeout=min(self.limiter.delay() or 0.25, 0.25))
        if not stop.is_set():
            tasks.pending[tasks.pool.submit(tasks.task, chunk)] = chunk

    def harvest(self, tasks: Tasks, journal: Journal, bar: RunProgress, stop: Stop, timeout: float) -> None:
        """Finish the chunks done within `timeout` (or just wait, when none is in flight)."""
        if not tasks.pending:
            stop.wait(timeout)
            return
        done, _ = wait(tasks.pending, timeout=timeout, return_when=FIRST_COMPLETED)
        for future in done:
            chunk = tasks.pending.pop(future)
            for planned, outcome in zip(chunk, future.result(), strict=True):
                self.finish(planned, outcome, journal, bar)

    def finish(self, planned: Planned, outcome: Outcome, journal: Journal, bar: RunProgress) -> None:
        """Journal a finished document (or note its failure) and drop its text: what stays in memory
        per document is the small `Planned` (a worker's outcome carries a copy of it, not this one)."""
        usage = outcome.usage
        self.result.usage.add(usage)
        self.limiter.charge(usage.calls, usage.prompt_tokens + usage.completion_tokens)
        planned.document = None
        if outcome.record_line is not None:
            journal.append(planned.key, outcome.record_line, outcome.keys, usage.nonzero(), outcome.counts,
                           outcome.warnings, planned.path)
            self.result.finished += 1
        elif outcome.failure is not None:
            self.failures[planned.position] = outcome.failure
            if outcome.offline_miss:
                self.offline_misses.add(planned.position)
        bar.advance(usage.prompt_tokens + usage.completion_tokens, usage.cache_hits, outcome.failure is not None)

    def manifest_context(self, inputs: list[Path], started_at: datetime, journal_id: str) -> dict[str, Any]:
        return {
            "inputs": [str(p) for p in inputs],
            "started": started_at.isoformat(timespec="seconds"),
            "config": self.config.public_dict(),
            "config_hash": journal_id,
            "provenance": self.backend.provenance().model_dump(mode="json"),
            "shard": {"index": self.shard.index, "count": self.shard.count} if self.shard else None,
            "limit": self.limit,
            "cache": {"mode": self.cache.mode.value, "path": str(self.cache.path) if self.cache.path else None},
        }


def _make_outdir(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{outdir}: cannot create the output directory: {exc.strerror or exc}") from exc


def run(inputs: list[Path], outdir: Path, config: RunConfig, *, shard: Shard | None = None,
        show_progress: bool = False, limit: int | None = None) -> RunResult:
    """Process `inputs` into `outdir`, resuming whatever an earlier run with the same settings finished."""
    return Runner(config, outdir, shard, show_progress, limit).run(inputs)
