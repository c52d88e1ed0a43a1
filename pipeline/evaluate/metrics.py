"""Per-document counts for one gold record against one predicted record.

Every metric is a `Counts` (tp/fp/fn). Rules, which the gold guideline follows:

- `criteria.segmentation`: a criterion is (kind, start, end); strict match, parents ignored.
- `entities.strict` / `entities.relaxed` (and `.<Type>` for each of the eight types): all
  entities of the record, by absolute offsets into `source_text`, matched by `match.match_spans`.
  Segmentation mistakes therefore do not cost entity points.
- `values`, `temporal`, `negation`: attributes compared on the entity pairs matched *relaxed*
  (entity detection is scored separately, so these measure attribute quality given detection).
  Per pair: both sides lack the attribute -> nothing; both have it and agree -> tp; otherwise
  fp when pred has it (wrong or spurious) and fn when gold has it (wrong or missed), so a wrong
  value costs one fp and one fn. Values agree when comparator, low, high (abs tol 1e-6) and the
  normalised unit agree; temporals when direction, anchor, min_days and max_days agree;
  negation is the attribute "negated is true".
- `values.all_gold`, `temporal.all_gold`, `negation.all_gold`: the same attributes end to end, over
  every entity: an attribute of a gold entity that was not found at all is also an fn, one of a
  spurious entity also an fp, so recall is the share of *all* gold attributes reproduced (the plain
  metrics hide what detection lost).
- `metadata.<field>`: for each `Trial` field, the set of normalised evidence values (a scalar
  field is a set of at most one); tp = |gold & pred|, fp = |pred - gold|, fn = |gold - pred|.
  The value is `Evidence.value`, or the evidence text when value is null. Absent on both sides
  counts nothing.

Units and anchors are normalised for spelling only (case, spaces, `×`/`x`, `µ`/`u`,
superscript digits); the guideline decides the canonical unit, the scorer does not convert.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from pipeline.evaluate.match import Counts, match_spans
from pipeline.schema import Entity, EntityType, Evidence, Temporal, Trial, TrialRecord, Value

ENTITY_TYPES: tuple[str, ...] = tuple(t.value for t in EntityType)
TRIAL_FIELDS: tuple[str, ...] = tuple(Trial.model_fields)
ATTRIBUTE_METRICS = ("values", "temporal", "negation")
END_TO_END = ".all_gold"

_SPELLING = str.maketrans({"×": "x", "µ": "u", "μ": "u", "⁰": "^0", "¹": "^1", "²": "^2", "³": "^3",
                           "⁴": "^4", "⁵": "^5", "⁶": "^6", "⁷": "^7", "⁸": "^8", "⁹": "^9", "⁻": "^-"})


def entity_metric_names() -> list[str]:
    names = ["entities.strict", "entities.relaxed"]
    return names + [f"entities.{mode}.{t}" for mode in ("strict", "relaxed") for t in ENTITY_TYPES]


def metric_names() -> list[str]:
    """Every metric, in report order; the set is fixed so baselines stay comparable."""
    return [
        "criteria.segmentation",
        *entity_metric_names(),
        *ATTRIBUTE_METRICS,
        *(f"{name}{END_TO_END}" for name in ATTRIBUTE_METRICS),
        *(f"metadata.{name}" for name in TRIAL_FIELDS),
    ]


class _Span(NamedTuple):
    type: str
    start: int
    end: int


def normalise_token(text: str | None) -> str | None:
    """Spelling-level normalisation of a unit or anchor; blank means absent."""
    if text is None:
        return None
    folded = "".join(text.translate(_SPELLING).replace("**", "^").split()).casefold()
    return folded or None


def _value_key(value: Value | None) -> tuple | None:
    if value is None:
        return None
    return (value.comparator, value.low, value.high, normalise_token(value.unit))


def _temporal_key(temporal: Temporal | None) -> tuple | None:
    if temporal is None:
        return None
    return (temporal.direction, normalise_token(temporal.anchor), temporal.min_days, temporal.max_days)


def _negation_key(entity: Entity) -> tuple | None:
    return (True,) if entity.negated else None


ATTRIBUTE_KEYS: dict[str, Callable[[Entity], tuple | None]] = {
    "values": lambda e: _value_key(e.value),
    "temporal": lambda e: _temporal_key(e.temporal),
    "negation": _negation_key,
}


def attributes_differ(gold: Entity, pred: Entity) -> list[str]:
    """The attribute metrics (`values`, `temporal`, `negation`) on which a matched pair disagrees."""
    differ = []
    for name, key in ATTRIBUTE_KEYS.items():
        g, p = key(gold), key(pred)
        if (g is None) != (p is None) or (g is not None and p is not None and not _same(g, p)):
            differ.append(name)
    return differ


def _same(gold: tuple, pred: tuple) -> bool:
    for a, b in zip(gold, pred, strict=True):
        if isinstance(a, float | int) and isinstance(b, float | int):
            if not math.isclose(a, b, rel_tol=0.0, abs_tol=1e-6):
                return False
        elif a != b:
            return False
    return True


def attribute_counts(
    pairs: Sequence[tuple[int, int]], gold: Sequence[Any], pred: Sequence[Any], key: Callable[[Any], tuple | None]
) -> Counts:
    """Score one attribute over matched pairs (rule in the module docstring)."""
    counts = Counts()
    for i, j in pairs:
        g, p = key(gold[i]), key(pred[j])
        if g is not None and p is not None and _same(g, p):
            counts.tp += 1
            continue
        counts.fp += p is not None
        counts.fn += g is not None
    return counts


def end_to_end(on_pairs: Counts, pairs: Sequence[tuple[int, int]], gold: Sequence[Any], pred: Sequence[Any],
               key: Callable[[Any], tuple | None]) -> Counts:
    """`on_pairs` plus the attributes of unmatched entities: gold ones as fn, predicted ones as fp."""
    matched_gold, matched_pred = {i for i, _ in pairs}, {j for _, j in pairs}
    lost = sum(key(g) is not None for i, g in enumerate(gold) if i not in matched_gold)
    spurious = sum(key(p) is not None for j, p in enumerate(pred) if j not in matched_pred)
    return Counts(on_pairs.tp, on_pairs.fp + spurious, on_pairs.fn + lost)


def entity_counts(gold: Sequence[Any], pred: Sequence[Any]) -> tuple[dict[str, Counts], list[tuple[int, int]]]:
    """Strict and relaxed entity counts, overall and per type, plus the relaxed pairs."""
    scores: dict[str, Counts] = {}
    relaxed_pairs: list[tuple[int, int]] = []
    for mode in ("strict", "relaxed"):
        pairs = match_spans(gold, pred, relaxed=mode == "relaxed")
        scores[f"entities.{mode}"] = Counts(len(pairs), len(pred) - len(pairs), len(gold) - len(pairs))
        for type_name in ENTITY_TYPES:
            tp = sum(1 for i, _ in pairs if str(gold[i].type) == type_name)
            n_pred = sum(1 for item in pred if str(item.type) == type_name)
            n_gold = sum(1 for item in gold if str(item.type) == type_name)
            scores[f"entities.{mode}.{type_name}"] = Counts(tp, n_pred - tp, n_gold - tp)
        relaxed_pairs = pairs
    return scores, relaxed_pairs


def _evidence_value(evidence: Evidence) -> str:
    value = evidence.value if evidence.value is not None else evidence.text
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(float(value))
    if isinstance(value, str):
        return " ".join(value.split()).casefold()
    return json.dumps(value, sort_keys=True, default=str).casefold()


def _evidence_set(trial: Trial, name: str) -> set[str]:
    item = getattr(trial, name)
    items = item if isinstance(item, list) else [item]
    return {_evidence_value(ev) for ev in items if ev is not None}


def metadata_counts(gold: Trial, pred: Trial) -> dict[str, Counts]:
    scores = {}
    for name in TRIAL_FIELDS:
        g, p = _evidence_set(gold, name), _evidence_set(pred, name)
        scores[f"metadata.{name}"] = Counts(len(g & p), len(p - g), len(g - p))
    return scores


def segmentation_counts(gold: TrialRecord, pred: TrialRecord | None) -> Counts:
    g = [_Span(c.kind, c.start, c.end) for c in gold.criteria]
    p = [_Span(c.kind, c.start, c.end) for c in pred.criteria] if pred else []
    tp = len(match_spans(g, p, relaxed=False))
    return Counts(tp, len(p) - tp, len(g) - tp)


def score_document(gold: TrialRecord, pred: TrialRecord | None) -> dict[str, Counts]:
    """All metrics for one document; a missing prediction (None) scores every gold item as fn."""
    gold_entities = gold.entities()
    pred_entities = pred.entities() if pred else []
    scores = {"criteria.segmentation": segmentation_counts(gold, pred)}
    entity_scores, pairs = entity_counts(gold_entities, pred_entities)
    scores.update(entity_scores)
    for name, key in ATTRIBUTE_KEYS.items():
        scores[name] = attribute_counts(pairs, gold_entities, pred_entities, key)
        scores[f"{name}{END_TO_END}"] = end_to_end(scores[name], pairs, gold_entities, pred_entities, key)
    scores.update(metadata_counts(gold.trial, pred.trial if pred else Trial()))
    return scores
