"""The Batch API calls: upload, create, retrieve, download; each safe to repeat after a kill.

Before an upload or a batch creation the state records that it started; after it, the id. A
rerun that finds a start without an id asks the server whether the action happened (an uploaded
file is found by its unique name, a batch by its input file) and only acts again if not.
"""

from __future__ import annotations

from typing import Any

from pipeline.batch.state import RESULTS, BatchState, RequestFile, output_usage
from pipeline.batch.transport import ENDPOINT
from pipeline.config import RunConfig
from pipeline.errors import RunError
from pipeline.files import atomic_write


def api_client(config: RunConfig) -> Any:
    import openai

    if not (config.base_url or config.api_key):
        raise RunError("the Batch API needs an endpoint: --base-url / OPENAI_BASE_URL or OPENAI_API_KEY")
    return openai.OpenAI(api_key=config.api_key or "not-needed", base_url=config.base_url, timeout=config.timeout)


def uploaded_name(state: BatchState, entry: RequestFile) -> str:
    """Unique per output directory, so a rerun recognises its own upload among the account's files."""
    return f"trialstruct-{state.token}-{entry.name}"


def send(client: Any, state: BatchState, entry: RequestFile) -> None:
    """Upload `entry` and create its batch, finishing whatever an earlier, killed attempt began."""
    if entry.file_id is None:
        if entry.upload_started:
            entry.file_id = _find_upload(client, uploaded_name(state, entry))
        if entry.file_id is None:
            entry.upload_started = True
            state.save()
            content = (state.directory / entry.name).read_bytes()
            entry.file_id = client.files.create(file=(uploaded_name(state, entry), content), purpose="batch").id
        state.save()
    if entry.batch_id is None:
        if entry.create_started:
            entry.batch_id = _find_batch(client, entry.file_id)
        if entry.batch_id is None:
            entry.create_started = True
            state.save()
            batch = client.batches.create(input_file_id=entry.file_id, endpoint=ENDPOINT, completion_window="24h",
                                          metadata={"trialstruct": uploaded_name(state, entry)})
            entry.batch_id, entry.status = batch.id, batch.status
        state.save()


def _find_upload(client: Any, name: str) -> str | None:
    return next((f.id for f in client.files.list(purpose="batch") if f.filename == name), None)


def _find_batch(client: Any, file_id: str | None) -> str | None:
    return next((b.id for b in client.batches.list() if b.input_file_id == file_id), None)


def refresh(client: Any, state: BatchState, entry: RequestFile) -> None:
    """The batch's status, counts and result files, as the server has them now."""
    if entry.batch_id is None or entry.collected:
        return
    batch = client.batches.retrieve(entry.batch_id)
    entry.status = batch.status
    counts = batch.request_counts
    entry.request_counts = counts.model_dump() if counts is not None else {}
    entry.output_file_id, entry.error_file_id = batch.output_file_id, batch.error_file_id
    state.save()


def download(client: Any, state: BatchState, entry: RequestFile) -> None:
    """A finished batch's output and error files into results/ (then it is collected)."""
    if not entry.finished or entry.collected:
        return
    results = state.directory / RESULTS
    results.mkdir(exist_ok=True)
    stem = entry.name.removesuffix(".jsonl")
    for kind, file_id in (("output", entry.output_file_id), ("errors", entry.error_file_id)):
        if file_id:
            text = client.files.content(file_id).read().decode("utf-8")
            atomic_write(results / f"{stem}.{kind}.jsonl", text if text.endswith("\n") or not text else text + "\n")
    output = results / f"{stem}.output.jsonl"
    entry.usage = output_usage(output, state.request_ids([entry])) if output.exists() else {}
    entry.collected = True
    state.save()


def cancel(client: Any, state: BatchState) -> int:
    """Ask the server to cancel every batch still running; returns how many."""
    cancelled = 0
    for entry in state.files:
        if entry.batch_id and not entry.finished:
            entry.status = client.batches.cancel(entry.batch_id).status
            cancelled += 1
    state.save()
    return cancelled
