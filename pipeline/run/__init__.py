"""Run: ingest -> segment -> extract over a batch of inputs, into one output directory.

`run()` extracts documents concurrently (`runner`), journals each finished one so an interrupted
or killed run resumes where it stopped (`journal`), honours client-side rate limits (`limits`),
can take one deterministic share of the inputs (`shard`), and writes the outputs atomically in
input order (`outputs`, which lists the files); `merge` recombines shard outputs.
"""

from pipeline.errors import RunError
from pipeline.run.outputs import Failure, RunResult
from pipeline.run.runner import process_document, run
from pipeline.run.shard import Shard

__all__ = ["Failure", "RunError", "RunResult", "Shard", "process_document", "run"]
