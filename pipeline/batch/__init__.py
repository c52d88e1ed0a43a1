"""Registry-scale runs through the OpenAI Batch API: `submit`, `status`, `collect` (see `flow`).

The pipeline is not changed for it: the `openai` backend's HTTP client gets a transport
(`transport.BatchTransport`) that answers chat requests from downloaded batch results and
defers the rest, which become the next batch. State lives in OUTDIR/batch (`state`); the API
calls are safe to repeat after a crash (`remote`).
"""

from pipeline.batch.flow import Progress, cancel, collect, status, submit

__all__ = ["Progress", "cancel", "collect", "status", "submit"]
