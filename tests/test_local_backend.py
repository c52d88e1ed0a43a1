"""The `local` backend in-process (llama-cpp-python + bundled SmolLM2) on the seeds.

Only the first criteria of each seed are sent, and answers are short, to keep the test to a few
minutes on a small CPU; the whole seeds run is `benchmarks/bench_llm_batching.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import RunConfig
from pipeline.ingest import iter_documents
from pipeline.schema import TrialRecord
from pipeline.segment import segment
from tests.conftest import SEEDS
from tests.llama_server import require_llama_cpp

CRITERIA_PER_SEED = 2

pytestmark = pytest.mark.slow  # a real model generates: minutes on a small CPU; CI runs it (-m slow)


@pytest.fixture(scope="module")
def backend():
    require_llama_cpp()
    from pipeline.extract.local import Backend

    return Backend(RunConfig(backend="local", max_tokens=128, max_reasks=1, cache_mode="off"))


@pytest.fixture(scope="module")
def seed_records() -> list[TrialRecord]:
    records = [segment(document) for document in iter_documents([SEEDS])]
    return [r.model_copy(update={"criteria": r.criteria[:CRITERIA_PER_SEED]}) for r in records if r.criteria]


def test_local_backend_extracts_grounded_entities_from_the_seeds(backend, seed_records: list[TrialRecord]) -> None:
    extractions = [backend.extract(record) for record in seed_records]
    assert sum(len(x.record.entities()) for x in extractions) > 0
    for record, extraction in zip(seed_records, extractions, strict=True):
        out = extraction.record
        assert out.source_text == record.source_text
        assert [c.id for c in out.criteria] == [c.id for c in record.criteria]
        for criterion in out.criteria:
            for entity in criterion.entities:
                assert entity.id.startswith(f"{criterion.id}.e")
                assert criterion.start <= entity.start < entity.end <= criterion.end
                assert out.source_text[entity.start : entity.end] == entity.text
        usage = extraction.usage
        assert usage.calls >= 1 and usage.prompt_tokens > 0 and usage.completion_tokens > 0
        assert usage.dropped_entities == sum(w.startswith("dropped entity") for w in out.warnings)
    provenance = backend.provenance()
    assert (provenance.backend, provenance.model) == ("local", "SmolLM2-135M-Instruct.Q4_1")
    assert provenance.prompt_version == "extract-v2" and len(provenance.prompt_hash) == 64


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    require_llama_cpp()
    from pipeline.errors import BackendError
    from pipeline.extract import load_backend

    with pytest.raises(BackendError, match=r"nope\.gguf: model file not found"):
        load_backend(RunConfig(backend="local", model_path=str(tmp_path / "nope.gguf")))
