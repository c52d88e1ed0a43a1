"""The rules backend on the seed pages: typed, exactly grounded entities with values and time windows."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import RunConfig
from pipeline.extract import load_backend, rules
from pipeline.extract.rules import Backend, load_default_lexicon, tag_text, tag_texts
from pipeline.ingest import Document, iter_documents, sha256_text
from pipeline.schema import Entity, Source, TrialRecord
from pipeline.segment import segment

SEEDS = Path(__file__).resolve().parents[1] / "seeds"


@pytest.fixture(scope="module")
def records() -> dict[str, TrialRecord]:
    backend = Backend(RunConfig(backend="rules"))
    out = {}
    for document in iter_documents([SEEDS]):
        assert isinstance(document, Document), str(document)
        record = backend.extract(segment(document)).record
        out[Path(record.source.path).stem[:3]] = TrialRecord.model_validate(record.model_dump())
    return out


def _find(record: TrialRecord, text: str, criterion: str = "") -> Entity:
    found = [e for e in record.entities() if e.text == text and e.id.startswith(criterion)]
    assert found, f"no entity {text!r} in {record.doc_id}"
    return found[0]


def test_auto_without_key_loads_rules() -> None:
    assert load_backend(RunConfig()).name == "rules"


def test_every_span_is_grounded_and_ids_follow_criteria(records: dict[str, TrialRecord]) -> None:
    for record in records.values():
        for criterion in record.criteria:
            for n, entity in enumerate(criterion.entities, 1):
                assert entity.id == f"{criterion.id}.e{n}"
                assert record.source_text[entity.start : entity.end] == entity.text
                assert criterion.start <= entity.start < entity.end <= criterion.end
                for part in (entity.value, entity.temporal):
                    if part is not None:
                        assert record.source_text[part.start : part.end] == part.text


def test_seeds_with_criteria_get_entities_and_the_empty_one_does_not(records: dict[str, TrialRecord]) -> None:
    counts = {key: len(record.entities()) for key, record in records.items()}
    assert counts["002"] == 0  # seeds/002 has no criteria section
    assert all(counts[key] >= 10 for key in ("000", "001", "003", "004"))


@pytest.mark.parametrize(
    ("seed", "text", "typ", "value"),
    [
        ("001", "hemoglobin", "Measurement", ("< 80g/L", "<", None, 80, "g/L")),  # seeds/001: "hemoglobin < 80g/L"
        ("001", "creatinine clearance rate", "Measurement", ("≤30 ml/min", "<=", None, 30, "mL/min")),
        ("001", "Age", "Person", ("18-75 years old", "between", 18, 75, "years")),  # seeds/001: "Age 18-75 years old"
        ("003", "PLT", "Measurement", ("<100×109/L", "<", None, 100, "x10^9/L")),  # seeds/003: "PLT<100×109/L"
        ("003", "HGB", "Measurement", ("≤85g/L", "<=", None, 85, "g/L")),  # seeds/003: "HGB≤85g/L"
        ("004", "eGFR", "Measurement", ("<30ml/min", "<", None, 30, "mL/min")),  # seeds/004: "eGFR<30ml/min"
        ("004", "exc-10.e:IgG", "Measurement", ("<4g/L", "<", None, 4, "g/L")),  # seeds/004: "IgG<4g/L"
    ],
)
def test_values_attach_to_measurements_and_persons(records, seed, text, typ, value) -> None:
    criterion, _, text = text.rpartition(":")  # 'exc-10.e:IgG': the IgG of exc-10 ('elevated IgG' is inc-3)
    entity = _find(records[seed], text, criterion)
    assert entity.type == typ
    assert entity.value is not None
    got = (entity.value.text, entity.value.comparator, entity.value.low, entity.value.high, entity.value.unit)
    assert got == value


@pytest.mark.parametrize(
    ("seed", "criterion", "text", "typ", "window"),
    [
        # seeds/003: "Herpes zoster lesions within 90 days prior to screening"
        ("003", "exc-9.", "Herpes zoster lesions", "Condition", ("before", "screening", 0, 90)),
        # seeds/003: "Major surgery within 8 weeks prior to Screening"
        ("003", "exc-13.", "Major surgery", "Procedure", ("before", "screening", 0, 56)),
        # seeds/004: "Previously treated with rituximab within six months"
        ("004", "exc-1.", "rituximab", "Drug", ("before", "now", 0, 180)),
        # seeds/001: "Received intravenous glucocorticoid (> 1 mg/kg/d) within 4 weeks"
        ("001", "exc-2.", "intravenous glucocorticoid", "Drug", ("before", "now", 0, 28)),  # route: GUIDELINE 4
    ],
)
def test_time_windows_attach(records, seed, criterion, text, typ, window) -> None:
    entity = _find(records[seed], text, criterion)
    assert entity.type == typ
    assert entity.temporal is not None
    temporal = entity.temporal
    assert (temporal.direction, temporal.anchor, temporal.min_days, temporal.max_days) == window


def test_negated_entity(records: dict[str, TrialRecord]) -> None:
    # seeds/001: "there were no new immunosuppressants"
    assert _find(records["001"], "immunosuppressants").negated
    # seeds/001: "heart failure (≥ NYHA III)" is not negated
    assert not _find(records["001"], "heart failure").negated


def test_extract_copies_the_record(records: dict[str, TrialRecord]) -> None:
    document = next(d for d in iter_documents([SEEDS / "004_26d5b2a701c48217.txt"]) if isinstance(d, Document))
    record = segment(document)
    extraction = Backend(RunConfig()).extract(record)
    assert record.entities() == []
    assert extraction.record.entities()
    assert extraction.record.provenance.backend == "rules"


def test_tag_text_on_a_plain_string() -> None:
    # chia-dev/NCT00050349_inc: "Karnofsky Performance Status > 60"
    tagged = tag_text("Karnofsky Performance Status > 60", load_default_lexicon())
    assert [(t.type, t.text, t.value.text if t.value else None) for t in tagged] == [
        ("Measurement", "Karnofsky Performance Status", "> 60")
    ]


SHARED_VALUES = [
    # ctgov NCT04646330 (evals/gold): both enzymes take the bound written once after them (each the name
    # without its abbreviation, GUIDELINE 4)
    ("Alanine aminotransferase (ALT) and aspartate aminotransferase (AST) ≤ 2.5 x ULN",
     {"Alanine aminotransferase": "≤ 2.5 x ULN", "aspartate aminotransferase": "≤ 2.5 x ULN"}),
    # seeds/001: the result written once before both tests
    ("Those who are positive for hepatitis B surface antigen or hepatitis C antibody;",
     {"hepatitis B surface antigen": "positive", "hepatitis C antibody": "positive"}),
    # seeds/000: a wrapped line between the test and its result is not a clause break
    ("Hepatitis B virus surface antigen and hepatitis C antibody were\npositive.Active TB",
     {"hepatitis C antibody": "positive"}),
    # ctgov NCT02550665 (evals/gold): a score bound with the comparator after the number
    ("Mini-Mental State Examination (MMSE) score of 20 or less", {"score": "20 or less"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), SHARED_VALUES)
def test_values_reach_coordinated_and_wrapped_measurements(text: str, expected: dict[str, str]) -> None:
    values = {t.text: t.value.text if t.value else None for t in tag_text(text, load_default_lexicon())}
    assert {name: values.get(name) for name in expected} == expected


@pytest.mark.parametrize(
    ("text", "shared"),
    [
        ("Creatinine clearance and total serum bilirubin ≤ 2 mg/dL", "≤ 2 mg/dL"),
        ("Creatinine clearance 60 and total serum bilirubin ≤ 2 mg/dL", None),  # a number of its own between
        ("Creatinine clearance; total serum bilirubin ≤ 2 mg/dL", None),  # another clause
    ],
)
def test_a_value_is_shared_only_across_joining_words(text: str, shared: str | None) -> None:
    values = {t.text: t.value.text if t.value else None for t in tag_text(text, load_default_lexicon())}
    assert values["Creatinine clearance"] == shared
    assert values["serum bilirubin"] == "≤ 2 mg/dL"


def test_extract_shares_no_mutable_state_with_its_input() -> None:
    # hint-style metadata (conditions, interventions) must be copied, not shared
    document = next(d for d in iter_documents([SEEDS / "001_ca660e7d86dc1c0c.txt"]) if isinstance(d, Document))
    record = segment(document)
    copy = Backend(RunConfig()).extract(record).record
    assert record.trial.evidence(), "the seed page has metadata to copy"
    assert copy.trial == record.trial
    assert copy.trial is not record.trial
    pairs = zip(copy.trial.evidence(), record.trial.evidence(), strict=True)
    assert all(a is not b for (_, a), (_, b) in pairs)
    assert all(a is not b for a, b in zip(copy.criteria, record.criteria, strict=True))


def _criteria_record(text: str) -> TrialRecord:
    source = Source(path="generated.jsonl", format="jsonl", sha256=sha256_text(text))
    return segment(Document("generated", source, text, layout="criteria"))


def test_a_repeated_criterion_is_tagged_once_and_grounded_in_each_record(monkeypatch: pytest.MonkeyPatch) -> None:
    tagged: list[str] = []

    def counting(texts: list[str], *options: object) -> list:
        tagged.extend(texts)
        return tag_texts(texts, *options)  # type: ignore[arg-type]

    monkeypatch.setattr(rules, "tag_texts", counting)
    backend = Backend(RunConfig(backend="rules"))
    repeated = "Pregnant or breastfeeding women with hemoglobin < 9 g/dL within 4 weeks"
    first = backend.extract(_criteria_record(f"Exclusion Criteria:\n- {repeated}\n")).record
    second = backend.extract(_criteria_record(f"Exclusion Criteria:\n- Known HIV infection\n- {repeated}\n")).record
    assert tagged.count(repeated) == 1
    ones = [(e.type, e.text, e.value, e.temporal) for e in first.entities()]
    twos = [(e.type, e.text, e.value, e.temporal) for e in second.entities() if e.start >= second.criteria[1].start]
    assert len(ones) >= 3 and [o[:2] for o in ones] == [t[:2] for t in twos]
    for record in (first, second):
        for where, span in record.spans():
            if span.start is not None:
                assert record.source_text[span.start : span.end] == span.text, where


def test_the_memory_of_repeated_criteria_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rules, "REPEATS_KEPT", 3)
    backend = Backend(RunConfig(backend="rules"))
    lines = "".join(f"- Hemoglobin < {n} g/dL\n" for n in range(10))
    record = backend.extract(_criteria_record("Inclusion Criteria:\n" + lines)).record
    assert len(record.criteria) == 10 and len(backend._remembered) == 3
    assert [e.value.high for e in record.entities() if e.value] == list(range(10))  # type: ignore[union-attr]
