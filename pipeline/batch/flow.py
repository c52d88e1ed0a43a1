"""The batch run: passes of the normal pipeline between rounds of Batch API requests.

A pass runs the pipeline (into OUTDIR/batch/work) with the `openai` backend talking through
`BatchTransport`: calls whose outcome is cached cost nothing, requests answered by a downloaded
batch are served from it, and every other request is recorded, its document deferred. A pass records
every call of a document that waits on no other answer (its criteria batches are independent; the
backend goes on past a deferred one), so a run takes 1 + (re-ask depth) rounds. When nothing is
pending or in flight, the final pass writes OUTDIR exactly as `trialstruct run` would, from the cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.batch import remote
from pipeline.batch.state import SPOOL, WORK, BatchState, Results, open_state
from pipeline.batch.transport import BatchTransport, batch_backend, httpx
from pipeline.cache import CacheMode
from pipeline.config import RunConfig, build_config
from pipeline.errors import ConfigError, RunError
from pipeline.extract import resolve_backend_name
from pipeline.files import read_json, write_json
from pipeline.run import RunResult, run
from pipeline.run.outputs import MANIFEST

BATCH_DIR = "batch"


@dataclass
class Progress:
    """What one `submit` or `collect` achieved."""

    documents: int = 0
    waiting: int = 0  # documents not done yet (a request waits for its answer, or the document failed)
    sent: int = 0  # requests sent in new batches by this step
    in_flight: int = 0  # batches not yet collected
    unknown_answers: int = 0
    result: RunResult | None = None  # the final run, once everything is answered


def submit(inputs: list[Path], outdir: Path, config: RunConfig) -> Progress:
    """Run a pass and send what it could not answer; finishes any earlier, interrupted submit."""
    if resolve_backend_name(config) != "openai":
        raise ConfigError("batch runs need the openai backend: give --model (and --base-url unless it is OpenAI's)")
    if config.cache_mode is not CacheMode.READWRITE:
        raise ConfigError("batch runs store every answer in the model cache: drop --offline, --refresh or --no-cache")
    state = open_state(outdir / BATCH_DIR, [str(p) for p in inputs], config.public_dict())
    earlier = stored_config(state, config.api_key)
    if state.inputs != [str(p) for p in inputs] or earlier.output_settings() != config.output_settings():
        raise RunError(f"{outdir}: holds a batch run of other inputs or settings; use another output directory")
    return _advance(state, outdir, config, sync_remainder=False)


def collect(outdir: Path, api_key: str | None = None, sync_remainder: bool = False) -> Progress:
    """Download finished batches, run a pass, send the remainder; assemble OUTDIR when all is answered."""
    state = BatchState.load(outdir / BATCH_DIR)
    config = stored_config(state, api_key)
    client = remote.api_client(config)
    for entry in state.files:
        remote.refresh(client, state, entry)
        remote.download(client, state, entry)
    return _advance(state, outdir, config, sync_remainder)


def status(outdir: Path, api_key: str | None = None, wait: bool = False, poll_max: float = 60.0,
           report: Callable[[BatchState], None] = lambda state: None) -> BatchState:
    """Each batch as the server has it now; with `wait`, poll (backing off to `poll_max` s) until all finished.

    A request file whose batch was never created (a step killed before it) is not waited for: the
    next `submit` or `collect` sends it.
    """
    state = BatchState.load(outdir / BATCH_DIR)
    client = remote.api_client(stored_config(state, api_key))
    delay = min(1.0, poll_max)
    while True:
        for entry in state.files:
            remote.refresh(client, state, entry)
        report(state)
        if not wait or all(entry.finished or entry.collected or entry.batch_id is None for entry in state.files):
            return state
        time.sleep(delay)
        delay = min(delay * 2, poll_max)


def cancel(outdir: Path, api_key: str | None = None) -> int:
    state = BatchState.load(outdir / BATCH_DIR)
    return remote.cancel(remote.api_client(stored_config(state, api_key)), state)


def stored_config(state: BatchState, api_key: str | None) -> RunConfig:
    """The submit's settings (the API key comes from --api-key or the environment, never from disk)."""
    flags = {**state.settings, "api_key": api_key}
    return build_config(flags)


def _advance(state: BatchState, outdir: Path, config: RunConfig, sync_remainder: bool) -> Progress:
    client = remote.api_client(config)
    for entry in state.files:  # an earlier step killed between writing a file and creating its batch
        if entry.batch_id is None:
            remote.send(client, state, entry)
    in_flight = [entry for entry in state.files if entry.in_flight]
    results = Results(state.directory, state.request_ids(state.files))
    fallback = httpx.HTTPTransport() if sync_remainder and not in_flight else None
    spool = state.directory / SPOOL
    transport = BatchTransport(results, spool, frozenset(state.request_ids(in_flight)), fallback)
    progress = Progress(unknown_answers=len(results.unknown))
    pass_config = config if fallback else config.with_changes(max_transport_retries=0)
    try:
        work = _pass(transport, state, state.directory / WORK, pass_config)
        progress.documents, progress.waiting = work.documents, len(work.failures)
        transport.close()
        if transport.pending:
            for entry in state.write_requests(spool):
                remote.send(client, state, entry)
                progress.sent += entry.requests
        progress.in_flight = sum(entry.in_flight for entry in state.files)
        if progress.in_flight == 0:
            progress.result = _pass(transport, state, outdir, pass_config)
            _add_to_manifest(outdir, state)
            state.complete = True
            state.save()
    finally:
        transport.close()
    return progress


def _pass(transport: BatchTransport, state: BatchState, outdir: Path, config: RunConfig) -> RunResult:
    with batch_backend(transport):
        return run(state.input_paths(), outdir, config)


def _add_to_manifest(outdir: Path, state: BatchState) -> None:
    manifest: dict[str, Any] = read_json(outdir / MANIFEST, "run manifest")
    write_json(outdir / MANIFEST, {**manifest, "batch": state.summary()})
