"""The `none` backend: segmentation only, no entities (useful to check ingest and segment)."""

from __future__ import annotations

from pipeline import __version__
from pipeline.config import RunConfig
from pipeline.extract import Extraction
from pipeline.schema import Provenance, TrialRecord


class Backend:
    name = "none"
    cpu_bound = True

    def __init__(self, config: RunConfig) -> None:
        self.config = config

    def provenance(self) -> Provenance:
        return Provenance(backend=self.name, pipeline_version=__version__)

    def extract(self, record: TrialRecord) -> Extraction:
        return Extraction(record=record.model_copy(deep=True))
