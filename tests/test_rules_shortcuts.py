"""The rules backend's speed shortcuts never change a result.

`find_temporals` skips a pattern when none of its trigger words occurs (`_triggers`, which reads
them off the tokenizer's words instead of scanning the text again) and the numbered patterns when no
time unit occurs; `find_negations` skips the cue scan when no cue word occurs (`_may_have_cues`).
A skip is only right if the skipped pattern would have found nothing, and the words must give what
the scan gives. Both are checked against the patterns themselves, on generated text built to hit the
edge cases (glued words, underscores, apostrophes, non-ASCII letters, plurals, capitals) and on every
criterion of the shared data sets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.extract.rules.lexicon import lower_ascii, starts_word, tokenize
from pipeline.extract.rules.negation import PRE_CUES, _may_have_cues, find_negations
from pipeline.extract.rules.temporal import NUMBERED, PATTERNS, TRIGGERS, UNIT_HINT, _triggers, find_temporals
from pipeline.ingest import Document, iter_documents
from pipeline.segment import segment
from tests.conftest import shared_path

PIECES = sorted(
    {word for words in TRIGGERS.values() for word in words}
    | set(
        """
        no not cannot unable to without free of from absence lack never denies denied rule rules ruled out none
        neither nor except for excluding with the exception other than unless non non- pregnant smoker
        n't isn't has had ago days day weeks months years hours wk mo yr 4 3 two 18 a an at least more within
        prior previous previously history current currently screening entry enrollment randomization
        consent informed first dose study trial during after before since following last past ever
        """.split()  # noqa: SIM905
    )
)
GLUE = [" ", " ", " ", "", "-", "_", "'", ",", ".", ";", "\n", "(", ")", "é", "ß", "²", "İ", "K"]


def _same_results(text: str) -> None:
    lowered = lower_ascii(text)
    words = {token[2] for token in tokenize(text)}
    present = _triggers(lowered, words)
    for kind, pattern in PATTERNS:
        if present.isdisjoint(TRIGGERS[kind]) or (kind in NUMBERED and UNIT_HINT.search(lowered) is None):
            assert pattern.search(lowered) is None, f"{kind} skipped but matches {text!r}"
    if not _may_have_cues(lowered, words):
        cues = [c for c in PRE_CUES.finditer(lowered) if starts_word(lowered, c.start()) or c.group() == "n't"]
        assert cues == [], f"negation skipped but {text!r} has a cue"
    assert find_temporals(text, lowered, words) == find_temporals(text), text
    assert find_negations(text, lowered, words) == find_negations(text), text


@pytest.mark.parametrize(
    "text",
    [
        "Serious infectionwithin 4 weeks prior to screening",  # 'within' glued to the word before
        "treated within 2 wks of randomisation",
        "18_ongoing chemotherapy",  # a pattern may start after '_'
        "MTX éprior to screening",  # ... or after a non-ASCII letter, inside a token
        "Patient isn't pregnant",
        "non-pregnant, nonpregnant",
        "Denies alcohol use; rules out sepsis",
        "No live vaccine within 30 days",
    ],
)
def test_shortcuts_on_known_edge_cases(text: str) -> None:
    _same_results(text)


@settings(max_examples=600, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(PIECES), st.sampled_from(GLUE), st.sampled_from(["lower", "title", "upper"])
        ),
        min_size=1,
        max_size=12,
    )
)
def test_shortcuts_match_the_full_scan_on_generated_text(parts: list[tuple[str, str, str]]) -> None:
    text = "".join(getattr(word, case)() + glue for word, glue, case in parts)
    _same_results(text)


def _criteria_texts(paths: list[Path]) -> list[str]:
    documents = [d for d in iter_documents(paths) if isinstance(d, Document)]
    return [criterion.text for document in documents for criterion in segment(document).criteria]


def test_shortcuts_match_the_full_scan_on_chia_and_ctgov() -> None:
    chia = sorted(shared_path("chia-dev").glob("*.txt"))
    texts = _criteria_texts([*chia, shared_path("ctgov/nsclc-ctg-studies.json")])
    assert len(texts) > 8_000
    for text in texts:
        _same_results(text)


def test_shortcuts_match_the_full_scan_on_hint() -> None:
    texts = _criteria_texts([shared_path("hint/hint-trials.jsonl")])
    assert len(texts) > 70_000
    for text in texts:
        _same_results(text)
