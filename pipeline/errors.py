"""One error root for everything trialstruct raises on purpose.

Each stage raises its own subclass, so whoever catches an error knows where it came from without
guessing: `exc.stage` is written into `errors.jsonl`, `exc.exit_code` is what the command returns.
Messages are one line naming the file (and row) and the problem; they never hold a secret.

A leaf module: it imports nothing of the pipeline, so every stage can import it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

EXIT_FAILED = 1  # some input or document failed; everything else was written
EXIT_USAGE = 2  # bad flags, settings or environment: nothing was run
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM: finished documents are saved, a rerun resumes


class TrialstructError(Exception):
    """Root of every error trialstruct raises on purpose."""

    stage: str = "pipeline"
    exit_code: int = EXIT_FAILED

    def line(self) -> str:
        """The message folded onto one line (errors are grepped, never wrapped)."""
        return " ".join(str(self).split())


class ConfigError(TrialstructError):
    """Settings, flags or the environment cannot make a working configuration."""

    stage = "config"
    exit_code = EXIT_USAGE


class IngestError(TrialstructError):
    """A file or row that could not be read into a document.

    Readers yield these in the document stream (one per bad file or row) instead of raising them,
    so a batch carries on past bad inputs and reports each.
    """

    stage = "ingest"

    def __init__(self, path: str, message: str, doc_id: str | None = None, row: int | None = None) -> None:
        self.path, self.message, self.doc_id, self.row = path, message, doc_id, row
        where = f"{path}, row {row}" if row is not None and f"row {row}" not in message else path
        super().__init__(f"{where}: {message}")


class SegmentError(TrialstructError):
    """A document could not be split into metadata and criteria."""

    stage = "segment"


class ExtractError(TrialstructError):
    """A backend failed on a document or cannot be set up."""

    stage = "extract"


class BackendError(ExtractError):
    """A backend cannot be loaded or configured: nothing was run."""

    exit_code = EXIT_USAGE


class GroundError(TrialstructError):
    """Text a model returned cannot be placed in the source."""

    stage = "ground"


class CacheError(TrialstructError):
    """The model-call cache or a recording cannot be used."""

    stage = "cache"
    exit_code = EXIT_USAGE


class RunError(TrialstructError):
    """A run cannot start (its output directory is in use) or shard outputs cannot be combined."""

    stage = "run"
    exit_code = EXIT_USAGE


class OutputError(TrialstructError):
    """A file cannot be written (full disk, read-only directory) or read back."""

    stage = "output"


class EvaluateError(TrialstructError):
    """Evaluation input (gold, predictions, baseline) is unusable."""

    stage = "evaluate"
    exit_code = EXIT_USAGE


class ReviewError(TrialstructError):
    """Input for the review page is unusable."""

    stage = "review"
    exit_code = EXIT_USAGE


class ExportError(TrialstructError):
    """A run cannot be read or its tables cannot be written."""

    stage = "export"
    exit_code = EXIT_USAGE


class UnexpectedError(TrialstructError):
    """An exception that is not ours (a bug, or an input nobody foresaw), caught at a stage boundary."""

    def __init__(self, stage: str, cause: BaseException) -> None:
        self.stage = stage
        detail = str(cause).splitlines()[0] if str(cause).strip() else ""
        super().__init__(f"{type(cause).__name__}: {detail}" if detail else type(cause).__name__)


@contextmanager
def in_stage(stage: str) -> Iterator[None]:
    """Attribute any exception raised inside to `stage`.

    An error of our own keeps the stage that raised it; anything else (a RecursionError while
    segmenting, a pydantic error while extracting) becomes an `UnexpectedError` of `stage`, chained
    to the original, so `errors.jsonl` never has to guess where a failure came from.
    """
    try:
        yield
    except TrialstructError:
        raise
    except Exception as exc:
        raise UnexpectedError(stage, exc) from exc
