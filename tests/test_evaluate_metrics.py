"""Scorer on known answers: hand-built TrialRecords with exact spans, hand-computed counts."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline.evaluate.match import Counts
from pipeline.evaluate.metrics import metric_names, score_document
from pipeline.evaluate.report import to_markdown
from pipeline.evaluate.score import build_report, score_records
from pipeline.evaluate.stats import DocumentResult, paired_bootstrap, percentile
from pipeline.schema import TrialRecord

TEXT = (
    "Inclusion Criteria:\n"
    "- Adults aged 18 years or older with non-small cell lung cancer\n"
    "- Hemoglobin >= 90 g/L\n"
    "- ECOG performance status 0-1\n"
    "Exclusion Criteria:\n"
    "- No prior chemotherapy within 28 days before screening\n"
    "- Pregnant women\n"
    "- History of hepatitis B\n"
)
CRITERIA = [
    ("inc-1", "inclusion", "Adults aged 18 years or older with non-small cell lung cancer"),
    ("inc-2", "inclusion", "Hemoglobin >= 90 g/L"),
    ("inc-3", "inclusion", "ECOG performance status 0-1"),
    ("exc-1", "exclusion", "No prior chemotherapy within 28 days before screening"),
    ("exc-2", "exclusion", "Pregnant women"),
    ("exc-3", "exclusion", "History of hepatitis B"),
]
# (criterion, type, text, extras): value/temporal extras give (source text, *normalised fields).
ENTITIES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("inc-1", "Person", "aged", {"value": ("18 years or older", ">=", 18, None, "years")}),
    ("inc-1", "Condition", "non-small cell lung cancer", {}),
    ("inc-2", "Measurement", "Hemoglobin", {"value": (">= 90 g/L", ">=", 90, None, "g/L")}),
    ("inc-3", "Measurement", "ECOG performance status", {"value": ("0-1", "between", 0, 1, None)}),
    ("exc-1", "Drug", "chemotherapy",
     {"negated": True, "temporal": ("within 28 days before screening", "before", "screening", 0, 28)}),
    ("exc-2", "Observation", "Pregnant", {}),
    ("exc-2", "Person", "women", {}),
    ("exc-3", "Condition", "hepatitis B", {}),
]
TRIAL = {
    "nct_id": {"text": "NCT00000001", "value": "NCT00000001"},
    "phases": [{"text": "Phase 2", "value": "PHASE2"}, {"text": "Phase 3", "value": "PHASE3"}],
    "sex": {"text": "All", "value": "ALL"},
    "enrollment": {"text": "120", "value": 120},
}


def locate(text: str, start_at: int = 0) -> tuple[int, int]:
    start = TEXT.index(text, start_at)
    return start, start + len(text)


def span_dict(text: str, start_at: int = 0) -> dict[str, Any]:
    start, end = locate(text, start_at)
    return {"text": text, "start": start, "end": end}


def entity_dict(criterion: str, type_: str, text: str, extras: dict[str, Any], n: int) -> dict[str, Any]:
    crit_start = locate(dict((c[0], c[2]) for c in CRITERIA)[criterion])[0]
    entity = {"id": f"{criterion}.e{n}", "type": type_, **span_dict(text, crit_start),
              "negated": extras.get("negated", False)}
    if "value" in extras:
        source, comparator, low, high, unit = extras["value"]
        entity["value"] = {**span_dict(source, crit_start), "comparator": comparator, "low": low, "high": high,
                           "unit": unit}
    if "temporal" in extras:
        source, direction, anchor, min_days, max_days = extras["temporal"]
        entity["temporal"] = {**span_dict(source, crit_start), "direction": direction, "anchor": anchor,
                              "min_days": min_days, "max_days": max_days}
    return entity


def record_dict(doc_id: str = "doc-1", entities=ENTITIES, trial=TRIAL) -> dict[str, Any]:
    criteria = []
    for cid, kind, text in CRITERIA:
        members = [e for e in entities if e[0] == cid]
        criteria.append({"id": cid, "kind": kind, **span_dict(text),
                         "entities": [entity_dict(*e, n) for n, e in enumerate(members, 1)]})
    return {"doc_id": doc_id, "source": {"path": "test.txt", "format": "text", "sha256": "0" * 64},
            "source_text": TEXT, "trial": trial, "criteria": criteria}


def record(**kwargs: Any) -> TrialRecord:
    return TrialRecord.model_validate(record_dict(**kwargs))


def with_extras(index: int, **changes: Any) -> list:
    entities = list(ENTITIES)
    crit, type_, text, extras = entities[index]
    entities[index] = (crit, type_, text, {**extras, **changes})
    return entities


def scores(pred: TrialRecord | None, gold: TrialRecord | None = None) -> dict[str, Counts]:
    return score_document(gold or record(), pred)


def test_gold_against_itself_is_perfect_everywhere():
    gold = record()
    docs, info = score_records([gold], {gold.doc_id: gold})
    report = build_report(docs, resamples=50, info=info)
    assert set(report["metrics"]) == set(metric_names())
    for name, m in report["metrics"].items():
        assert (m["precision"], m["recall"], m["f1"], m["fp"], m["fn"]) == (1.0, 1.0, 1.0, 0, 0), name
        assert report["intervals"][name]["f1"] == [1.0, 1.0]
    assert report["metrics"]["entities.strict"]["tp"] == len(ENTITIES)
    assert report["metrics"]["values"]["tp"] == 3
    assert report["metrics"]["metadata.phases"]["tp"] == 2


def test_dropping_half_the_entities_halves_recall_only():
    s = scores(record(entities=ENTITIES[::2]))
    for name in ("entities.strict", "entities.relaxed"):
        assert s[name] == Counts(tp=4, fp=0, fn=4)
        assert (s[name].precision, s[name].recall) == (1.0, 0.5)


def test_shifting_spans_by_one_breaks_strict_not_relaxed():
    pred_dict = record_dict()
    for criterion in pred_dict["criteria"]:
        for entity in criterion["entities"]:
            entity["start"] += 1
            entity["end"] += 1
            entity["text"] = TEXT[entity["start"]:entity["end"]]
    s = scores(TrialRecord.model_validate(pred_dict))
    assert s["entities.strict"] == Counts(tp=0, fp=8, fn=8)
    assert s["entities.relaxed"] == Counts(tp=8, fp=0, fn=0)
    assert s["entities.strict.Condition"] == Counts(tp=0, fp=2, fn=2)
    assert s["entities.relaxed.Condition"] == Counts(tp=2, fp=0, fn=0)
    assert s["values"] == Counts(tp=3)


def test_an_extra_entity_lowers_precision_only():
    s = scores(record(entities=[*ENTITIES, ("exc-3", "Procedure", "History", {})]))
    assert s["entities.relaxed"] == Counts(tp=8, fp=1, fn=0)
    assert s["entities.relaxed"].recall == 1.0
    assert s["entities.relaxed"].precision == pytest.approx(8 / 9)
    assert s["entities.relaxed.Procedure"] == Counts(tp=0, fp=1, fn=0)
    assert s["entities.relaxed.Drug"] == Counts(tp=1)


def test_type_mismatch_is_fp_and_fn_in_both_types():
    entities = list(ENTITIES)
    entities[7] = ("exc-3", "Observation", "hepatitis B", {})
    s = scores(record(entities=entities))
    assert s["entities.relaxed.Condition"] == Counts(tp=1, fp=0, fn=1)
    assert s["entities.relaxed.Observation"] == Counts(tp=1, fp=1, fn=0)


def test_values_hand_computed():
    entities = with_extras(2, value=(">= 90 g/L", ">", 90, None, "g/L"))  # wrong comparator: fp + fn
    entities = [e if i != 3 else (*e[:3], {}) for i, e in enumerate(entities)]  # ECOG value missed: fn
    entities[1] = (*entities[1][:3], {"value": ("18 years or older", ">=", 18, None, "years")})  # spurious: fp
    s = scores(record(entities=entities))
    assert s["values"] == Counts(tp=1, fp=2, fn=2)
    assert s["values"].precision == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("value", "agrees"),
    [
        ((">= 90 g/L", ">=", 90.0000004, None, "G / L"), True),
        ((">= 90 g/L", ">=", 90, None, "mg/L"), False),
        ((">= 90 g/L", ">=", 90.01, None, "g/L"), False),
        ((">= 90 g/L", ">=", 90, 90, "g/L"), False),
    ],
)
def test_value_agreement_rule(value, agrees):
    s = scores(record(entities=with_extras(2, value=value)))
    assert s["values"] == (Counts(tp=3) if agrees else Counts(tp=2, fp=1, fn=1))


def test_values_only_count_on_relaxed_matches():
    s = scores(record(entities=[e for i, e in enumerate(ENTITIES) if i != 2]))
    assert s["values"] == Counts(tp=2)


def test_all_gold_attributes_count_what_detection_lost():
    missing = [e for i, e in enumerate(ENTITIES) if i != 2]  # an entity with a gold value, not found at all
    s = scores(record(entities=missing))
    assert s["values"] == Counts(tp=2)  # attribute quality given detection hides the loss
    assert s["values.all_gold"] == Counts(tp=2, fn=1)
    spurious = [*ENTITIES, ("inc-1", "Person", "Adults", {"value": ("18 years or older", ">=", 18, None, "years")})]
    assert scores(record(entities=spurious))["values.all_gold"] == Counts(tp=3, fp=1)


def test_temporal_hand_computed():
    window = ("within 28 days before screening", "before", "Screening ", 0, 28)
    assert scores(record(entities=with_extras(4, temporal=window)))["temporal"] == Counts(tp=1)
    wrong = ("within 28 days before screening", "before", "screening", 0, 30)
    assert scores(record(entities=with_extras(4, temporal=wrong)))["temporal"] == Counts(tp=0, fp=1, fn=1)
    dropped = [(*e[:3], {"negated": True}) if i == 4 else e for i, e in enumerate(ENTITIES)]
    assert scores(record(entities=dropped))["temporal"] == Counts(tp=0, fp=0, fn=1)


def test_negation_hand_computed():
    entities = with_extras(4, negated=False)
    entities = [*entities[:5], ("exc-2", "Observation", "Pregnant", {"negated": True}), *entities[6:]]
    assert scores(record(entities=entities))["negation"] == Counts(tp=0, fp=1, fn=1)
    assert scores(record())["negation"] == Counts(tp=1)


def test_segmentation_hand_computed():
    pred = record_dict()
    pred["criteria"][1].update(span_dict("Hemoglobin >= 90"))
    pred["criteria"][2]["kind"] = "exclusion"
    s = scores(TrialRecord.model_validate(pred))
    assert s["criteria.segmentation"] == Counts(tp=4, fp=2, fn=2)


def test_metadata_hand_computed():
    trial = {
        "nct_id": {"text": "NCT00000001", "value": "NCT00000001"},
        "phases": [{"text": "Phase 2", "value": "phase2"}, {"text": "Phase 1", "value": "PHASE1"}],
        "enrollment": {"text": "120", "value": 120.0},
        "status": {"text": "Recruiting", "value": "RECRUITING"},
    }
    s = scores(record(trial=trial))
    assert s["metadata.nct_id"] == Counts(tp=1)
    assert s["metadata.phases"] == Counts(tp=1, fp=1, fn=1)
    assert s["metadata.enrollment"] == Counts(tp=1)
    assert s["metadata.sex"] == Counts(fn=1)
    assert s["metadata.status"] == Counts(fp=1)
    assert s["metadata.title"].empty


def test_missing_and_extra_documents():
    gold = [record(doc_id="a"), record(doc_id="b")]
    docs, info = score_records(gold, {"a": gold[0], "zzz": record(doc_id="zzz")})
    assert info["missing_documents"] == ["b"]
    assert info["extra_predictions"] == ["zzz"]
    missing = docs[1].counts
    assert missing["entities.relaxed"] == Counts(fn=8)
    assert missing["criteria.segmentation"] == Counts(fn=6)
    assert missing["metadata.phases"] == Counts(fn=2)
    report = build_report(docs, resamples=20, info=info)
    assert report["metrics"]["entities.relaxed"] == Counts(tp=8, fn=8).as_dict()
    assert report["worst_documents"][0]["doc_id"] == "b"
    assert report["worst_documents"][0]["missing"] is True


def test_source_text_mismatch_is_flagged():
    other = record_dict()
    other["source_text"] = TEXT + "extra"
    _, info = score_records([record()], {"doc-1": TrialRecord.model_validate(other)})
    assert info["text_mismatch"] == ["doc-1"]


def test_micro_and_macro_averages_hand_computed():
    gold = [record(doc_id="a"), record(doc_id="b")]
    preds = {"a": gold[0], "b": record(doc_id="b", entities=ENTITIES[::2])}
    docs, info = score_records(gold, preds)
    report = build_report(docs, resamples=200, info=info)
    micro = report["metrics"]["entities.relaxed"]
    assert (micro["tp"], micro["fp"], micro["fn"]) == (12, 0, 4)
    assert micro["f1"] == pytest.approx(24 / 28)
    assert report["macro"]["entities.relaxed"]["f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert report["macro"]["entities.relaxed"]["n"] == 2
    # A metric with no items in a document is left out of that metric's macro mean.
    assert report["macro"]["temporal"]["n"] == 2
    assert report["macro"]["metadata.title"]["n"] == 0
    # Per-type macro: mean of per-type micro F1 over the 5 types present.
    per_type = [report["metrics"][f"entities.relaxed.{t}"]["f1"]
                for t in ("Condition", "Drug", "Measurement", "Observation", "Person")]
    assert report["macro"]["entities.relaxed.types"]["f1"] == pytest.approx(sum(per_type) / 5)
    low, high = report["intervals"]["entities.relaxed"]["f1"]
    assert low == pytest.approx(2 / 3) and high == 1.0


def test_bootstrap_is_deterministic_and_brackets_the_estimate():
    gold = [record(doc_id=str(i)) for i in range(6)]
    preds = {str(i): record(doc_id=str(i), entities=ENTITIES[: 2 + i]) for i in range(6)}
    docs, _ = score_records(gold, preds)
    first = build_report(docs, resamples=300, seed=3)
    again = build_report(docs, resamples=300, seed=3)
    assert first["intervals"] == again["intervals"]
    low, high = first["intervals"]["entities.relaxed"]["recall"]
    assert low < first["metrics"]["entities.relaxed"]["recall"] < high
    assert first["intervals"]["entities.relaxed"]["precision"] == [1.0, 1.0]


def paired(base: list[tuple[int, int, int]], other: list[tuple[int, int, int]], **options: int) -> list[float]:
    def docs(counts: list[tuple[int, int, int]]) -> list[DocumentResult]:
        return [DocumentResult(f"d{i}", {"m": Counts(*c)}) for i, c in enumerate(counts)]

    return paired_bootstrap(docs(base), docs(other), ["m"], **options)["m"]


def test_paired_bootstrap_of_identical_runs_is_zero():
    runs = [(3, 1, 1), (0, 2, 2), (5, 0, 1)]
    assert paired(runs, runs, resamples=200) == [0.0, 0.0]


def test_paired_bootstrap_one_document_is_the_exact_difference():
    # F1 2*2/(4+2+2) = 0.5 against 2*4/(8+0+0) = 1.0: every resample is that one document
    assert paired([(2, 2, 2)], [(4, 0, 0)], resamples=50) == pytest.approx([0.5, 0.5])


def test_paired_bootstrap_sees_a_consistent_gain_that_separate_intervals_would_hide():
    # documents differ a lot in difficulty; the other run is better by one tp on each of them
    base = [(1, 9, 9), (9, 1, 1), (5, 5, 5), (2, 8, 8), (8, 2, 2), (4, 6, 6), (6, 4, 4), (3, 7, 7)]
    other = [(tp + 1, fp, fn - 1) for tp, fp, fn in base]
    low, high = paired(base, other, resamples=500, seed=1)
    assert 0 < low < high
    assert paired(other, base, resamples=500, seed=1) == pytest.approx([-high, -low])


def test_paired_bootstrap_refuses_unpaired_documents():
    with pytest.raises(ValueError, match="same documents in the same order"):
        paired_bootstrap([DocumentResult("a", {})], [DocumentResult("b", {})], ["m"])


def test_percentile_interpolates():
    assert percentile([4, 1, 3, 2], 0.5) == 2.5
    assert percentile([1, 2, 3, 4, 5], 0.25) == 2
    assert percentile([7], 0.975) == 7


def test_report_json_shape_and_markdown():
    gold = record()
    docs, info = score_records([gold], {"doc-1": record(entities=ENTITIES[:4])})
    report = build_report(docs, resamples=10, info=info)
    assert {"metrics", "macro", "intervals", "worst_documents", "documents"} <= set(report)
    assert report["documents"][0]["metrics"]["entities.strict"] == Counts(tp=4, fn=4).as_dict()
    assert "metadata.title" not in report["documents"][0]["metrics"]
    markdown = to_markdown(report)
    assert "| entities.strict | 1.000 | 0.500 | 0.667 |" in markdown
    assert "metadata.title" not in markdown
