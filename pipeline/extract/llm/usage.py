"""What one document's model calls cost, counted around the backend's `complete`, not inside it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ExtractError
from pipeline.extract import Usage


class ExtractionError(ExtractError):
    """A document could not be extracted; `usage` still holds what the attempts cost."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or Usage()


class CallDeferred(ExtractionError):
    """A call its transport holds for later (the batch flow records it for a Batch API round).

    Not a failure of the call: the document's other independent calls still go out, then the
    document waits for a later pass. `calls` counts the calls held.
    """

    def __init__(self, message: str, usage: Usage | None = None, calls: int = 1) -> None:
        super().__init__(message, usage)
        self.calls = calls


class TokenBudgetExceeded(ExtractionError):
    """The per-document token budget ran out (re-asks cannot run away)."""


class DeadlineExceeded(ExtractionError):
    """The per-document deadline passed (retries and re-asks cannot hold a document forever)."""


@dataclass
class Meter:
    """Counts every completion a document costs, failed attempts included, and enforces its budget.

    Transport retries are counted by the backend through `count_retry`; the meter wraps `complete`
    so a backend's transport code knows nothing of tokens or budgets.
    """

    budget: int
    seconds: float | None = None
    usage: Usage = field(default_factory=Usage)
    started: float = field(default_factory=time.monotonic)

    def spent(self) -> int:
        return self.usage.prompt_tokens + self.usage.completion_tokens

    def check_deadline(self) -> None:
        elapsed = time.monotonic() - self.started
        if self.seconds is not None and elapsed >= self.seconds:
            raise DeadlineExceeded(f"document deadline of {self.seconds:g} s passed ({elapsed:.1f} s)")

    def count_retry(self) -> None:
        """Called before each transport retry: counts it, and stops retrying past the deadline."""
        self.usage.retries += 1
        self.check_deadline()

    def wrap(self, complete: Callable[..., Any]) -> Callable[..., Any]:
        def metered(**request: Any) -> Any:
            if self.spent() >= self.budget:
                raise TokenBudgetExceeded(f"token budget of {self.budget} exhausted ({self.spent()} spent)")
            self.check_deadline()
            response = complete(self.count_retry, **request)
            self.usage.calls += 1
            if response.usage is not None:
                self.usage.prompt_tokens += response.usage.prompt_tokens or 0
                self.usage.completion_tokens += response.usage.completion_tokens or 0
            return response

        return metered
