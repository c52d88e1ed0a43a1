"""Fuzzing every reader and the whole document path (ingest -> segment -> rules extract): no exception
escapes, every span is exact, every document finishes within a time limit.

The in-suite runs are bounded to a few seconds; `test_twenty_thousand_generated_documents` (slow) is
the long run, also available as `python -m tests.fuzz_documents --count 20000`.
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_documents import Findings, check_input, random_input, rules_backend, run

# CPU seconds, generous for a slow CI machine: a quadratic path takes tens of seconds, not two.
SECONDS_PER_DOCUMENT = 2.0
BACKEND = rules_backend()
# Any code point, with lone surrogates spliced in (they reach a reader through JSON escapes; hypothesis's
# own character strategy all but never draws them).
ANY_TEXT = st.lists(st.one_of(st.text(max_size=40), st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"]),
                              st.sampled_from(["\r", "\r\n", "\u2028", "\x85", "1. ", "Inclusion Criteria:"])),
                    max_size=20).map("".join)


def _assert_clean(found: Findings) -> None:
    assert found.crashes == []
    assert found.inexact == []
    assert found.slowest < SECONDS_PER_DOCUMENT, found.slowest_input


def _check(name: str, content: bytes) -> Findings:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / name
        path.write_bytes(content)
        return check_input(path, BACKEND)


def _as_file(fmt: str, text: str) -> tuple[str, bytes]:
    if fmt == "page":
        return "page.txt", text.encode("utf-8", "surrogatepass")
    if fmt == "ctgov":
        study = {"protocolSection": {"identificationModule": {"nctId": "NCT00000001", "briefTitle": text[:20]},
                                     "eligibilityModule": {"eligibilityCriteria": text}}}
        return "study.json", json.dumps(study).encode("ascii")
    if fmt == "jsonl":
        return "rows.jsonl", (json.dumps({"nct_id": "NCT1", "criteria": text}, ensure_ascii=False) + "\n").encode(
            "utf-8", "surrogatepass")
    return "rows.csv", ('nct_id,criteria\nNCT1,"' + text.replace('"', '""') + '"\nNCT2,- adults\n').encode(
        "utf-8", "surrogatepass")


@given(ANY_TEXT, st.sampled_from(["page", "ctgov", "jsonl", "csv"]))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_any_text_in_any_format(text: str, fmt: str) -> None:
    _assert_clean(_check(*_as_file(fmt, text)))


@given(st.randoms(use_true_random=False))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_registry_like_inputs(rng: random.Random) -> None:
    _assert_clean(_check(*random_input(rng)))


@pytest.mark.slow
def test_twenty_thousand_generated_documents() -> None:
    found = run(20_000, seed=0)
    assert found.documents >= 20_000
    _assert_clean(found)
