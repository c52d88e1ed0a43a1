"""The `openai` backend: any OpenAI-compatible chat-completions endpoint, through instructor.

Transport retries (429 honouring Retry-After, 5xx, timeouts, connection resets) are handled here
with tenacity, apart from instructor's validation re-asks. The endpoint is first asked for
OpenAI structured output (`response_format` type `json_schema`); a server that rejects it (such as
llama-cpp-python's) is asked from then on with `json_object` + `schema`, its own form of
schema-constrained decoding. The API key goes to the client and nowhere else.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from pipeline.config import RunConfig
from pipeline.errors import BackendError
from pipeline.extract.llm import ExtractionError, LLMBackend, Meter, constrained_format

MAX_RETRY_AFTER = 120.0
_backoff = wait_random_exponential(multiplier=0.5, max=30)


class TransportError(ExtractionError):
    """The endpoint could not be reached or kept failing after the transport retries."""


class _FormatRefused(Exception):
    """The endpoint does not take `response_format` type `json_schema`."""


class Backend(LLMBackend):
    name = "openai"

    def __init__(self, config: RunConfig, http_client: Any = None) -> None:
        super().__init__(config)
        self.http_client = http_client  # an httpx Client for openai.OpenAI (the batch flow's transport)
        if not config.model:
            raise BackendError("backend 'openai' needs a model name: --model or TRIALSTRUCT_MODEL")
        if not (config.base_url or config.api_key):
            raise BackendError("backend 'openai' needs an endpoint: --base-url / OPENAI_BASE_URL or OPENAI_API_KEY")
        self.model_id = config.model
        self.response_format = "json_schema"
        self._client: Any = None

    def client(self) -> Any:
        """Built on first use, so a run served from the cache never opens a connection."""
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=self.config.api_key or "not-needed",
                base_url=self.config.base_url,
                timeout=self.config.timeout,
                max_retries=0,
                http_client=self.http_client,
            )
        return self._client

    def complete(self, meter: Meter, **request: Any) -> Any:
        request = {**request, "model": self.model_id}
        try:
            return self._send(meter, request)
        except _FormatRefused:
            self.response_format = "json_object"
            return self._send(meter, request)

    def _send(self, meter: Meter, request: dict[str, Any]) -> Any:
        """One request with transport retries; `_FormatRefused` if it asked with json_schema and was refused.

        The format is read once: with several requests in flight, others may be refused json_schema
        after this one switched the backend to json_object, and each must still fall back.
        """
        import openai

        response_format = self.response_format
        if response_format == "json_object":
            request = constrained_format(request)

        def count_retry(_: RetryCallState) -> None:
            meter.usage.retries += 1

        retrying = Retrying(
            stop=stop_after_attempt(self.config.max_transport_retries + 1),
            wait=transport_wait,
            retry=retry_if_exception(lambda exc: is_transient(exc) and not refuses_format(exc)),
            before_sleep=count_retry,
            reraise=True,
        )
        try:
            return retrying(self.client().chat.completions.create, **request)
        except openai.APIError as exc:
            if response_format == "json_schema" and refuses_format(exc):
                raise _FormatRefused from None
            raise TransportError(self._redact(f"{type(exc).__name__}: {exc}")) from None

    def _redact(self, text: str) -> str:
        key = self.config.api_key
        return text.replace(key, "***") if key else text


def refuses_format(exc: BaseException) -> bool:
    """A rejection of the response format (llama-cpp-python answers it with a 500, others with 400/422)."""
    import openai

    return isinstance(exc, openai.APIStatusError) and exc.status_code in (400, 422, 500) and (
        "response_format" in str(exc)
    )


def is_transient(exc: BaseException) -> bool:
    """Worth sending again: rate limits, server errors, timeouts and dropped connections."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    return isinstance(exc, openai.APIStatusError) and (exc.status_code == 429 or exc.status_code >= 500)


def transport_wait(state: RetryCallState) -> float:
    """The server's Retry-After when it gives one (bounded), else exponential backoff with jitter."""
    exc = state.outcome.exception() if state.outcome else None
    hinted = retry_after(exc)
    return min(hinted, MAX_RETRY_AFTER) if hinted is not None else _backoff(state)


def retry_after(exc: BaseException | None) -> float | None:
    """Seconds from a `Retry-After` (seconds or HTTP date) or `retry-after-ms` header."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_to_datetime(value) if email.utils.parsedate(value) else None
        return max(0.0, when.timestamp() - time.time()) if when else None
