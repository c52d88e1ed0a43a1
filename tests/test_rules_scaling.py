"""The rules tagger's time grows linearly (or n log n) with the size of one criterion, not quadratically.

Issue 12: attaching values took 46 s on 'ANC ' + '1.5 x 10^9/L ' * 4000 (52 KB), because every entity
scanned every value. Each case times one criterion at 1x and at 8x its size and asserts the ratio: about 8
for linear work, 64 for quadratic; the bound sits between them (a ratio, not an absolute time, so a slow or
busy machine does not fail it). Garbage collection is paused while timing, best of three runs.
"""

from __future__ import annotations

import gc
import time

import pytest

from pipeline.extract.rules import load_default_lexicon, tag_text

SMALL_CHARS = 12_000  # the 1x text; a criterion this long is already rare
MAX_RATIO = 24  # 8x input: linear ~8, quadratic ~64

CASES = {
    "values": ("ANC ", "1.5 x 10^9/L "),  # one name, thousands of values
    "results": ("", "HBsAg positive 5 mg "),  # qualitative results among numbers
    "items": ("", "diabetes, hypertension, asthma, "),  # thousands of entities
    "negated items": ("", "no diabetes; "),  # thousands of negation scopes
    "windows": ("", "for 4 weeks "),  # thousands of time windows
    "mixed": ("", "history of stroke within 6 months prior to screening, hemoglobin < 9 g/dL, "),
}


def _seconds(text: str) -> float:
    lexicon = load_default_lexicon()
    best = float("inf")
    gc.disable()
    try:
        for _ in range(3):
            started = time.perf_counter()
            tag_text(text, lexicon)
            best = min(best, time.perf_counter() - started)
    finally:
        gc.enable()
    return best


@pytest.mark.parametrize("case", sorted(CASES))
def test_time_grows_linearly_with_one_criterion(case: str) -> None:
    head, unit = CASES[case]
    tag_text("warm up: hemoglobin < 9 g/dL within 4 weeks", load_default_lexicon())
    copies = SMALL_CHARS // len(unit)
    small, large = _seconds(head + unit * copies), _seconds(head + unit * copies * 8)
    assert large / small < MAX_RATIO, f"{case}: 8x the text took {large / small:.1f}x the time ({small:.3f}s)"


def test_dense_values_each_attach_to_the_one_name() -> None:
    found = tag_text("ANC " + "1.5 x 10^9/L " * 50, load_default_lexicon())
    assert [(t.text, t.value.text if t.value else None) for t in found[:1]] == [("ANC", "1.5 x 10^9/L")]
