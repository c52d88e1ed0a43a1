"""The HTTP layer of the batch flow: chat requests answered from downloaded batch results, or deferred.

The pipeline runs exactly as for a synchronous run; only the `openai` client's transport is
replaced. So validation, grounding, re-asks and cache storage treat a batch answer exactly as a
synchronous one, and the flow does not depend on what the requests or answers look like.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

try:
    import httpx2 as httpx  # the HTTP library of openai >= 3
except ImportError:  # pragma: no cover - older openai clients use httpx
    import httpx  # type: ignore[no-redef, import-not-found]

from pipeline.cache import canonical_json
from pipeline.config import RunConfig
from pipeline.errors import TrialstructError
from pipeline.extract.llm import CallDeferred

CHAT_PATH = "/chat/completions"
ENDPOINT = "/v1/chat/completions"


class Deferred(CallDeferred):
    """A chat request with no batch answer yet: recorded for a batch, its document waits for a later pass."""

    def __init__(self, custom_id: str) -> None:
        super().__init__(f"request {custom_id[:16]} waits for a Batch API answer")
        self.custom_id = custom_id


def request_id(body: dict[str, Any]) -> str:
    """The batch `custom_id` of a chat request: SHA-256 of its canonical JSON body (order of keys ignored)."""
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def request_line(custom_id: str, body: dict[str, Any]) -> str:
    """One line of a Batch API input file."""
    line = {"custom_id": custom_id, "method": "POST", "url": ENDPOINT, "body": body}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n"


class Answered:
    """What the transport may serve: for each custom_id, an HTTP status and response body."""

    def get(self, custom_id: str) -> tuple[int, dict[str, Any]] | None:
        raise NotImplementedError


class BatchTransport(httpx.BaseTransport):
    """Serves downloaded answers; any other chat request is recorded as pending and deferred.

    Pending requests are appended to the `spool` file as Batch API lines (only their ids stay in
    memory: a registry's requests do not fit in it). `in_flight` requests (already sent in a batch
    that has not come back) are deferred without being recorded again. With a `fallback` transport,
    requests that are neither answered nor in flight are sent to the real endpoint instead
    (`collect --sync-remainder`).
    """

    def __init__(self, answered: Answered, spool: Path, in_flight: frozenset[str] = frozenset(),
                 fallback: httpx.BaseTransport | None = None) -> None:
        self.answered = answered
        self.in_flight = in_flight
        self.fallback = fallback
        self.pending: set[str] = set()
        self._spool = spool.open("w", encoding="utf-8")
        self.served = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method != "POST" or not request.url.path.endswith(CHAT_PATH):
            what = f"{request.method} {request.url.path}"
            raise TrialstructError(f"the batch flow sends only chat completions, not {what}")
        body = json.loads(request.read())
        custom_id = request_id(body)
        found = self.answered.get(custom_id)
        if found is not None:
            status, payload = found
            with self._lock:
                self.served += 1
            return httpx.Response(status, json=payload, request=request)
        if self.fallback is not None and custom_id not in self.in_flight:
            return self.fallback.handle_request(request)
        if custom_id not in self.in_flight:
            with self._lock:
                if custom_id not in self.pending:
                    self.pending.add(custom_id)
                    self._spool.write(request_line(custom_id, body))
                    self._spool.flush()
        raise Deferred(custom_id)

    def close(self) -> None:
        self._spool.close()
        if self.fallback is not None:
            self.fallback.close()


@contextmanager
def batch_backend(transport: BatchTransport) -> Iterator[None]:
    """Within the block, the `openai` backend of this process talks through `transport`."""
    from openai import DefaultHttpxClient

    from pipeline.extract import register_backend
    from pipeline.extract.openai_compat import Backend

    def factory(config: RunConfig) -> Backend:
        return Backend(config, http_client=DefaultHttpxClient(transport=transport))

    register_backend("openai", factory)
    try:
        yield
    finally:
        register_backend("openai", Backend)  # what the built-in entry point names
