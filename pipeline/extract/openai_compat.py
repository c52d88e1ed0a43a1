"""The `openai` backend: any OpenAI-compatible chat-completions endpoint, through instructor.

Transport retries (429 honouring Retry-After, 5xx, timeouts, connection resets) are handled here
with tenacity, apart from instructor's validation re-asks. `timeout` bounds a whole request, not
each read: a server trickling its answer byte by byte is cut off at the deadline. An endpoint that
cannot be reached before it ever answered fails at once, and every later request fails fast with
the same message naming the (redacted) URL, instead of retrying for minutes per document.

The endpoint is first asked for OpenAI structured output (`response_format` type `json_schema`);
a server that rejects it (such as llama-cpp-python's) is asked from then on with `json_object` +
`schema`, its own form of schema-constrained decoding. The API key goes to the client and nowhere else.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterator
from typing import Any

try:  # the HTTP library of the installed openai client: httpx2 from openai 3 on, httpx before
    import httpx2 as httpx
except ImportError:
    import httpx  # type: ignore[no-redef, import-not-found, unused-ignore]

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from pipeline.config import RunConfig
from pipeline.errors import BackendError, TrialstructError, caused_by
from pipeline.extract.llm import CallDeferred, ExtractionError, LLMBackend, constrained_format
from pipeline.redact import redact_url

MAX_RETRY_AFTER = 120.0
_backoff = wait_random_exponential(multiplier=0.5, max=30)


class TransportError(ExtractionError):
    """The endpoint could not be reached or kept failing after the transport retries."""


class EndpointUnreachable(TransportError):
    """The endpoint refused or never took a connection, and has never answered in this run."""


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
        self._reached = False  # an answer came back once: later connection errors are transient
        self._unreachable: str | None = None

    def endpoint(self) -> str:
        """The endpoint as it may be written: credentials masked."""
        return redact_url(self.config.base_url) or "https://api.openai.com/v1 (default)"

    def client(self) -> Any:
        """Built on first use, so a run served from the cache never opens a connection."""
        if self._client is None:
            import openai

            timeout = self.config.timeout
            self._client = openai.OpenAI(
                api_key=self.config.api_key or "not-needed",
                base_url=self.config.base_url,
                timeout=timeout,
                max_retries=0,
                http_client=self.http_client or httpx.Client(transport=DeadlineTransport(timeout), timeout=timeout),
            )
        return self._client

    def complete(self, on_retry: Callable[[], None], **request: Any) -> Any:
        if self._unreachable is not None:
            raise EndpointUnreachable(self._unreachable)
        request = {**request, "model": self.model_id}
        try:
            response = self._send(on_retry, request)
        except _FormatRefused:
            self.response_format = "json_object"
            response = self._send(on_retry, request)
        self._reached = True
        return response

    def _send(self, on_retry: Callable[[], None], request: dict[str, Any]) -> Any:
        """One request with transport retries; `_FormatRefused` if it asked with json_schema and was refused.

        The format is read once: with several requests in flight, others may be refused json_schema
        after this one switched the backend to json_object, and each must still fall back.
        """
        import openai

        response_format = self.response_format
        if response_format == "json_object":
            request = constrained_format(request)

        retrying = Retrying(
            stop=stop_after_attempt(self.config.max_transport_retries + 1),
            wait=transport_wait,
            retry=retry_if_exception(lambda exc: self._worth_retrying(exc)),
            before_sleep=lambda _: on_retry(),
            reraise=True,
        )
        try:
            return retrying(self.client().chat.completions.create, **request)
        except openai.APIError as exc:
            if caused_by(exc, CallDeferred):  # the transport holds the request (the batch flow)
                raise CallDeferred("a model call waits for an answer") from None
            if response_format == "json_schema" and refuses_format(exc):
                raise _FormatRefused from None
            message = self.redact(f"{type(exc).__name__} from {self.endpoint()}: {exc}")
            if self._never_reached(exc):
                self._unreachable = f"endpoint unreachable: {message}"
                raise EndpointUnreachable(self._unreachable) from None
            raise TransportError(message) from None

    def _never_reached(self, exc: BaseException) -> bool:
        import openai

        connection_failed = isinstance(exc, openai.APIConnectionError) and not isinstance(exc, openai.APITimeoutError)
        deliberate = caused_by(exc, TrialstructError)  # our own transport said no (the batch flow deferring a call)
        return connection_failed and not deliberate and not self._reached

    def _worth_retrying(self, exc: BaseException) -> bool:
        deferred = caused_by(exc, CallDeferred)
        return is_transient(exc) and not refuses_format(exc) and not deferred and not self._never_reached(exc)


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


class DeadlineTransport(httpx.HTTPTransport):
    """An httpx transport whose responses must arrive whole within `seconds` of the request.

    httpx's own timeouts apply to each read, so a server sending a byte every second would hold a
    request forever; this one counts from the request and raises httpx.ReadTimeout past the deadline.
    """

    def __init__(self, seconds: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        deadline = time.monotonic() + self.seconds
        response = super().handle_request(request)
        response.stream = _DeadlineStream(response.stream, deadline, request)  # type: ignore[arg-type]
        return response


class _DeadlineStream(httpx.SyncByteStream):
    def __init__(self, stream: Any, deadline: float, request: httpx.Request) -> None:
        self.stream, self.deadline, self.request = stream, deadline, request

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.stream:
            if time.monotonic() > self.deadline:
                raise httpx.ReadTimeout("response not complete within the request timeout", request=self.request)
            yield chunk

    def close(self) -> None:
        self.stream.close()
