"""The progress bar of a batch run (on stderr, only when it is a terminal)."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import Progress, TaskID, TextColumn

REFRESH_SECONDS = 0.1


class RunProgress:
    """docs done, docs/s, tokens, cache hits and errors (inputs are streamed: no total is known).

    Counting costs nothing per document: the bar is redrawn at most every `REFRESH_SECONDS`, with
    the rate over the whole run, and not at all when stderr is not a terminal.
    """

    def __init__(self, enabled: bool = True) -> None:
        console = Console(stderr=True)
        self.enabled = enabled and console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]extract"),
            TextColumn("{task.completed:,.0f} docs"),
            TextColumn("{task.fields[rate]} docs/s"),
            TextColumn("{task.fields[tokens]:,} tokens · {task.fields[hits]:,} cache hits"),
            TextColumn("· {task.fields[errors]} errors"),
            console=console,
            disable=not self.enabled,
        )
        self.task: TaskID = self.progress.add_task("run", total=None, rate="-", tokens=0, hits=0, errors=0)
        self.documents = self.tokens = self.hits = self.errors = 0
        self.started = self.shown = time.monotonic()

    def advance(self, tokens: int = 0, hits: int = 0, error: bool = False) -> None:
        self.documents += 1
        self.tokens += tokens
        self.hits += hits
        self.errors += int(error)
        if self.enabled and time.monotonic() - self.shown >= REFRESH_SECONDS:
            self.show()

    def show(self) -> None:
        self.shown = time.monotonic()
        elapsed = self.shown - self.started
        self.progress.update(self.task, completed=self.documents, tokens=self.tokens, hits=self.hits,
                             errors=self.errors, rate=f"{self.documents / elapsed:.1f}" if elapsed else "-")

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.enabled:
            self.show()
        self.progress.stop()
