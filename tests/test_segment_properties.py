"""Property-based tests: random and mangled inputs never crash the segmenter or give an inexact span."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest import Document, sha256_text
from pipeline.schema import Source
from pipeline.segment import segment
from tests.conftest import SEEDS

_PIECES = [
    "Inclusion Criteria:", "Exclusion Criteria:", "INCLUSION CRITERIA", "Inclusion", "Criteria", "Status:",
    "Phase:", "Early Phase 1", "Accepts Healthy Volunteers?", "Lead Sponsor:", "1.", "2)", "(3)", "- 1.", "-",
    "*", "•", "a)", "ii.", "DISEASE CHARACTERISTICS:", "hemoglobin < 80 g/L", "within 4 weeks", "\n", "\n\n",
    "\r\n", "   ", "\t", "Age 18-75", "Ages 5-18 All Genders", "Connect with a study center", "Study Design",
]
_SEED_TEXTS = [path.read_text(encoding="utf-8") for path in sorted(SEEDS.glob("*.txt"))]


def _document(text: str, layout: str) -> Document:
    source = Source(path="generated.txt", format="text", sha256=sha256_text(text))
    return Document("generated", source, text, layout=layout)  # type: ignore[arg-type]


def _assert_exact(text: str, layout: str) -> None:
    record = segment(_document(text, layout))
    for where, span in record.spans():
        if span.start is not None:
            assert text[span.start:span.end] == span.text, where
    for criterion in record.criteria:
        assert criterion.text.strip(), criterion.id


@given(st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=30)), max_size=60),
       st.sampled_from(["page", "criteria"]))
@settings(max_examples=300, deadline=None)
def test_random_pieces_never_crash_or_misplace(pieces: list[str], layout: str) -> None:
    _assert_exact(" ".join(pieces) if len(pieces) % 3 == 0 else "".join(pieces), layout)


@given(st.sampled_from(_SEED_TEXTS), st.data())
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_mangled_seed_pages(text: str, data: st.DataObject) -> None:
    """Cut, duplicate and splice real pages: the layouts the segmenter must survive, broken."""
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, len(text)))
    insertion = data.draw(st.sampled_from(_PIECES))
    mangled = text[:start] + insertion + text[end:] + text[start:end]
    _assert_exact(mangled, data.draw(st.sampled_from(["page", "criteria"])))
