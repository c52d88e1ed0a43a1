"""Lookups of spans by position, so that attaching values, windows and negations to n entities costs
n log n, not n x (number of values): a criterion can hold thousands of values ('1.5 x 10^9/L ' * 4000).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from operator import gt, sub
from typing import Generic, Protocol, TypeVar


class Span(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


S = TypeVar("S", bound=Span)


class SpanIndex(Generic[S]):
    """Spans sorted by start, answering 'which spans start near here' by bisection.

    `near(lo, hi)` returns, in their original order, every span that starts at or before `hi` and ends
    at or after `lo` (and possibly a few more whose start is within the longest span's length of `lo`):
    a superset of the spans touching [lo, hi], so a scan of it finds what a scan of all spans finds.
    """

    def __init__(self, spans: Sequence[S]) -> None:
        self.spans = list(spans)
        self.starts = [span.start for span in self.spans]
        if any(map(gt, self.starts, self.starts[1:])):
            raise ValueError("SpanIndex needs spans sorted by start")
        self.reach = max(map(sub, [span.end for span in self.spans], self.starts), default=0)

    def __bool__(self) -> bool:
        return bool(self.spans)

    def near(self, lo: int, hi: int) -> list[S]:
        first = bisect_left(self.starts, lo - self.reach)
        return self.spans[first : bisect_right(self.starts, hi)]

    def containing(self, start: int, end: int) -> list[S]:
        """The spans that hold all of [start, end], in their original order."""
        return [span for span in self.near(start, start) if span.start <= start and end <= span.end]


class Intervals:
    """Non-overlapping (start, end) intervals added in runs of increasing start, with an overlap test
    that bisects each run: what a scan over every interval taken so far answers, in log time."""

    def __init__(self) -> None:
        self.runs: list[tuple[list[int], list[int]]] = []

    def new_run(self) -> None:
        self.runs.append(([], []))

    def add(self, start: int, end: int) -> None:
        starts, ends = self.runs[-1]
        if starts and start < starts[-1]:
            raise ValueError("Intervals: a run must be added in order of start")
        starts.append(start)
        ends.append(end)

    def overlaps(self, start: int, end: int) -> bool:
        """Some interval has s < end and start < e. In a run of non-overlapping intervals sorted by start the
        ends are sorted too, so only the last interval starting before `end` can reach past `start`."""
        for starts, ends in self.runs:
            last = bisect_left(starts, end) - 1
            if last >= 0 and ends[last] > start:
                return True
        return False

