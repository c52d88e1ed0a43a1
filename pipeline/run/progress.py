"""The progress bar of a batch run (on stderr, only when it is a terminal)."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import Progress, TaskID, TextColumn


class RunProgress:
    """docs done, docs/s, tokens, cache hits and errors (inputs are streamed: no total is known)."""

    def __init__(self, enabled: bool = True) -> None:
        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]extract"),
            TextColumn("{task.completed:,.0f} docs"),
            TextColumn("{task.fields[rate]} docs/s"),
            TextColumn("{task.fields[tokens]:,} tokens · {task.fields[hits]:,} cache hits"),
            TextColumn("· {task.fields[errors]} errors"),
            console=console,
            disable=not (enabled and console.is_terminal),
        )
        self.task: TaskID = self.progress.add_task("run", total=None, rate="-", tokens=0, hits=0,
                                                    errors=0)
        self.tokens = self.hits = self.errors = 0

    def advance(self, tokens: int = 0, hits: int = 0, error: bool = False) -> None:
        self.tokens += tokens
        self.hits += hits
        self.errors += int(error)
        self.progress.advance(self.task)
        speed = self.progress.tasks[0].speed
        self.progress.update(self.task, rate=f"{speed:.1f}" if speed else "-", tokens=self.tokens, hits=self.hits,
                             errors=self.errors)

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()
