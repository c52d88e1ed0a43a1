"""The rules backend's speed shortcuts never change a result.

With `PreparedText.shortcuts`, `find_temporals` skips a pattern when none of its trigger words
occurs (read off the tokenizer's words instead of scanning the text again) and the numbered patterns
when no time unit occurs, and tries the other patterns only where one of their first words starts;
`find_negations` tries its cues only where a cue word starts. That is only right if no pattern can
match anywhere else. Checked against the patterns themselves and against the full scan, on generated
text built to hit the edge cases (glued words, underscores, apostrophes, non-ASCII letters, plurals,
capitals) and on every criterion of the shared data sets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.extract.rules.lexicon import PreparedText
from pipeline.extract.rules.negation import _pre_cues, find_negations, starts_cue
from pipeline.extract.rules.temporal import (
    NUMBERED,
    PATTERNS,
    TRIGGERS,
    UNIT_HINT,
    _finditer,
    _triggers,
    find_temporals,
)
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


def _spans(matches: list) -> list[tuple[int, int]]:
    return [m.span() for m in matches]


def _same_results(text: str) -> None:
    fast, full = PreparedText.of(text), PreparedText.of(text, shortcuts=False)
    lowered, present = full.lowered, _triggers(fast)
    assert present == _triggers(full), text
    for kind, pattern in PATTERNS:
        if present.isdisjoint(TRIGGERS[kind]) or (kind in NUMBERED and UNIT_HINT.search(lowered) is None):
            assert pattern.search(lowered) is None, f"{kind} skipped but matches {text!r}"
        elif kind not in NUMBERED:
            assert _spans(_finditer(kind, pattern, fast)) == _spans(pattern.finditer(lowered)), (kind, text)
    kept = [_spans(c for c in _pre_cues(prepared) if starts_cue(lowered, c.start())) for prepared in (fast, full)]
    assert kept[0] == kept[1], text
    assert find_temporals(fast) == find_temporals(full), text
    assert find_negations(fast) == find_negations(full), text


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
        "have received bisphosphonates for at least the past month",  # hint: 'the' starts no time phrase
        "within 6 months prerandomization",  # a glued 'pre' + anchor word
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


@pytest.mark.slow
def test_shortcuts_match_the_full_scan_on_hint() -> None:
    texts = _criteria_texts([shared_path("hint/hint-trials.jsonl")])
    assert len(texts) > 70_000
    for text in texts:
        _same_results(text)
