"""The sequence tagger over arrays (crf_numpy.py, the `fast` extra) finds exactly what the pure-Python
tagger finds: the same emission scores, the same lattice search, the same labels and records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.config import RunConfig
from pipeline.extract.rules import Backend, load_default_lexicon, load_default_model, tag_text, tag_texts
from pipeline.extract.rules.crf import CrfTagger
from pipeline.extract.rules.lexicon import tokenize
from pipeline.extract.rules.tagger import _Reading
from pipeline.ingest import Document, iter_documents
from pipeline.segment import segment
from tests.conftest import SEEDS, shared_path

np = pytest.importorskip("numpy", reason="numpy (the `fast` extra) is not installed")
crf_numpy = pytest.importorskip("pipeline.extract.rules.crf_numpy")


def _seed_criteria() -> list[str]:
    return [c.text for d in iter_documents([SEEDS]) if isinstance(d, Document) for c in segment(d).criteria]


def test_array_emissions_are_the_pure_python_sums() -> None:
    lexicon = load_default_lexicon()
    tagger = CrfTagger(load_default_model(), lexicon.word_type)
    for text in _seed_criteria():
        item = _Reading.of(text, lexicon).tagger_input()
        expected = tagger.emissions(*item)
        got = crf_numpy.emissions(tagger._arrays.sync(tagger.rows), tagger.row_ids(*item))
        assert got.tolist() == [list(row) for row in expected], text  # equal floats, not approximately


def test_tagging_a_document_together_equals_tagging_each_criterion_alone_in_pure_python() -> None:
    lexicon = load_default_lexicon()
    fast = CrfTagger(load_default_model(), lexicon.word_type)
    slow = CrfTagger(load_default_model(), lexicon.word_type, arrays=False)
    texts = _seed_criteria()
    assert tag_texts(["", " ; "], lexicon, fast) == [[], []]  # nothing to decode at all
    texts[3:3] = ["", "-"]
    together = tag_texts(texts, lexicon, fast)
    assert sum(map(len, together)) > 100
    assert together == [tag_text(text, lexicon, slow) for text in texts]


def test_the_tagger_forgets_its_rows_between_batches_and_still_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry-sized vocabulary cannot grow the rows without end: past ROWS_KEPT they start afresh."""
    from pipeline.extract.rules import crf

    monkeypatch.setattr(crf, "ROWS_KEPT", 50)
    lexicon = load_default_lexicon()
    small = CrfTagger(load_default_model(), lexicon.word_type)
    texts = _seed_criteria()[:40]
    sizes, got = [], []
    for text in texts:
        got += tag_texts([text], lexicon, small)
        sizes.append(len(small.rows))
    most_one_text_adds = 1 + 7 * max(len(tokenize(text)) for text in texts)  # 7 slots a token, and the zero row
    assert max(sizes) < 50 + most_one_text_adds and min(sizes[5:]) < max(sizes)  # emptied, bounded by a batch
    reference = CrfTagger(load_default_model(), lexicon.word_type)
    assert got == tag_texts(texts, lexicon, reference)


@pytest.mark.slow
@pytest.mark.parametrize("corpus", ["hint/hint-trials.jsonl", "ctgov"])
def test_records_with_and_without_numpy_are_identical_on_real_registry_text(corpus: str, tmp_path: Path) -> None:
    path = shared_path(corpus)
    config = RunConfig(backend="rules")
    lexicon = load_default_lexicon()
    fast = Backend(config, tagger=CrfTagger(load_default_model(), lexicon.word_type))
    slow = Backend(config, tagger=CrfTagger(load_default_model(), lexicon.word_type, arrays=False))
    documents = [d for d in iter_documents([path]) if isinstance(d, Document)][:60]
    for document in documents:
        record = segment(document)
        one, two = fast.extract(record).record, slow.extract(record).record
        assert json.loads(one.model_dump_json()) == json.loads(two.model_dump_json()), document.doc_id


@pytest.mark.parametrize("arrays", [True, False])
def test_threads_sharing_a_tagger_find_what_one_thread_finds(arrays: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows are numbered as they are learned: threads tagging at once (switching every microsecond here)
    must not number one row twice or forget rows another thread is using."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.extract.rules import crf

    monkeypatch.setattr(crf, "ROWS_KEPT", 400)  # forgetting happens too
    lexicon = load_default_lexicon()
    texts = _seed_criteria()
    expected = tag_texts(texts, lexicon, CrfTagger(load_default_model(), lexicon.word_type, arrays=arrays))
    shared = CrfTagger(load_default_model(), lexicon.word_type, arrays=arrays)
    chunks = [texts[i::4] for i in range(4)]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(4) as pool:
            found = list(pool.map(lambda chunk: tag_texts(chunk, lexicon, shared), chunks))
    finally:
        sys.setswitchinterval(previous)
    for i, chunk_found in enumerate(found):
        assert chunk_found == expected[i::4]
