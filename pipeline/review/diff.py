"""Entity-level comparisons shown on the review page, computed here so the page never re-implements matching.

Against gold, each predicted entity gets one status:
- `tp`: same type and span as a gold entity (strict match) and the same value, time window and
  negation (the scorer's attribute rule, `metrics.attributes_differ`);
- `attr`: a strict match whose value, time window or negation differs;
- `partial`: same type, overlapping span only (relaxed match);
- `type`: no match of its type, but it overlaps an unmatched gold entity of another type;
- `fp`: nothing in gold overlaps it.
Unmatched gold entities are misses, except those paired by `type`. For every paired entity the gold
side is reported beside it (`counterpart`) with the attributes that differ (`differs`), and each
problem becomes one row of `problems` (kinds in `PROBLEM_KINDS`), the rows of the cross-document
overview and its CSV. Against another run: entities are paired with `match_spans(relaxed=True)` and
reported as `added`, `changed` (with the differing fields) or `same`; unpaired entities of the other
run are `removed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.evaluate.match import count, match_spans
from pipeline.evaluate.metrics import attributes_differ
from pipeline.schema import Entity, Temporal, TrialRecord, Value

COMPARED_FIELDS = ("type", "text", "start", "end", "negated", "value", "temporal", "alignment")
PROBLEM_KINDS = {
    "fp": "false positive",
    "miss": "miss",
    "span": "span",
    "type": "type",
    "values": "value",
    "temporal": "time window",
    "negation": "negation",
}


@dataclass(frozen=True)
class _Untyped:
    """A span with its type hidden, to pair leftover entities whose types disagree."""

    start: int
    end: int
    type: str = ""


def _entity_json(entity: Entity) -> dict[str, Any]:
    return entity.model_dump(mode="json")


def _owner(record: TrialRecord) -> dict[str, str]:
    return {e.id: c.id for c in record.criteria for e in c.entities}


def _number(x: float | None) -> str:
    return "?" if x is None else f"{x:g}"


def value_text(value: Value | None) -> str:
    """A value in one short line: comparator, bounds, unit and the text it came from."""
    if value is None:
        return "none"
    bounds = f"{_number(value.low)}–{_number(value.high)}"
    return f"{value.comparator or '?'} {bounds} {value.unit or ''} “{value.text}”".replace("  ", " ")


def temporal_text(temporal: Temporal | None) -> str:
    """A time window in one short line: direction, anchor, days and the text it came from."""
    if temporal is None:
        return "none"
    days = f"{_number(temporal.min_days)}–{_number(temporal.max_days)} days"
    return f"{temporal.direction or '?'} {temporal.anchor or '?'} {days} “{temporal.text}”"


def _describe(kind: str, entity: Entity | None) -> str:
    """What one side shows for a problem of `kind` (empty when that side has no entity)."""
    if entity is None:
        return ""
    if kind == "values":
        return value_text(entity.value)
    if kind == "temporal":
        return temporal_text(entity.temporal)
    if kind == "negation":
        return "negated" if entity.negated else "not negated"
    if kind == "type":
        return str(entity.type)
    return f"“{entity.text}” {entity.start}–{entity.end}"


def _problem(kind: str, pred: Entity | None, gold: Entity | None, criterion: str) -> dict[str, Any]:
    shown = pred or gold
    assert shown is not None
    return {
        "kind": kind,
        "label": PROBLEM_KINDS[kind],
        "criterion": criterion,
        "type": str(shown.type),
        "text": shown.text,
        "start": shown.start,
        "end": shown.end,
        "entity": pred.id if pred else None,
        "gold_entity": gold.id if gold else None,
        "run": _describe(kind, pred),
        "gold": _describe(kind, gold),
    }


def _type_pairs(gold: list[Entity], pred: list[Entity], free_gold: list[int], free_pred: list[int]) -> dict[int, int]:
    """Leftover (pred index -> gold index) pairs that overlap: same place, other type."""
    g = [_Untyped(gold[i].start, gold[i].end) for i in free_gold]
    p = [_Untyped(pred[j].start, pred[j].end) for j in free_pred]
    return {free_pred[b]: free_gold[a] for a, b in match_spans(g, p, relaxed=True)}


def gold_diff(pred: TrialRecord, gold: TrialRecord) -> dict[str, Any]:
    """Per-entity status of `pred` against `gold`, the gold side of each pair, the problems and the scores."""
    if pred.source_text != gold.source_text:
        return {"error": f"gold for {pred.doc_id} was made from a different source text; offsets do not compare"}
    p_ents, g_ents = pred.entities(), gold.entities()
    strict = {j for _, j in match_spans(g_ents, p_ents, relaxed=False)}
    paired = {j: i for i, j in match_spans(g_ents, p_ents, relaxed=True)}
    matched_gold = set(paired.values())
    free_gold = [i for i in range(len(g_ents)) if i not in matched_gold]
    retyped = _type_pairs(g_ents, p_ents, free_gold, [j for j in range(len(p_ents)) if j not in paired])
    gold_owner, pred_owner = _owner(gold), _owner(pred)
    status: dict[str, str] = {}
    counterpart: dict[str, dict[str, Any]] = {}
    differs: dict[str, list[str]] = {}
    problems: list[dict[str, Any]] = []
    for j, entity in enumerate(p_ents):
        where = pred_owner[entity.id]
        if j not in paired and j not in retyped:
            status[entity.id] = "fp"
            problems.append(_problem("fp", entity, None, where))
            continue
        match = g_ents[paired.get(j, retyped.get(j, -1))]
        counterpart[entity.id] = {**_entity_json(match), "criterion": gold_owner[match.id]}
        if j in retyped:
            status[entity.id] = "type"
            problems.append(_problem("type", entity, match, where))
            continue
        differs[entity.id] = attributes_differ(match, entity)
        status[entity.id] = "partial" if j not in strict else "attr" if differs[entity.id] else "tp"
        if j not in strict:
            problems.append(_problem("span", entity, match, where))
        problems += [_problem(kind, entity, match, where) for kind in differs[entity.id]]
    unmatched = set(free_gold) - set(retyped.values())
    missed = [g for i, g in enumerate(g_ents) if i in unmatched]
    problems += [_problem("miss", None, g, gold_owner[g.id]) for g in missed]
    problems.sort(key=lambda p: (p["start"], p["end"], p["kind"]))
    return {
        "status": status,
        "counterpart": counterpart,
        "differs": {k: v for k, v in differs.items() if v},
        "missed": [{**_entity_json(g), "criterion": gold_owner[g.id]} for g in missed],
        "problems": problems,
        "strict": count(g_ents, p_ents, relaxed=False).as_dict(),
        "relaxed": count(g_ents, p_ents, relaxed=True).as_dict(),
    }


def _changed_fields(new: Entity, old: Entity) -> dict[str, list[Any]]:
    a, b = _entity_json(new), _entity_json(old)
    return {name: [b[name], a[name]] for name in COMPARED_FIELDS if a[name] != b[name]}


def run_diff(current: TrialRecord, other: TrialRecord) -> dict[str, Any]:
    """Added, removed and changed entities of `current` relative to `other` (the prompt-regression view)."""
    if current.source_text != other.source_text:
        return {"error": f"the other run read a different source text for {current.doc_id}"}
    cur, old = current.entities(), other.entities()
    paired = {j: i for i, j in match_spans(old, cur, relaxed=True)}
    status: dict[str, str] = {}
    changes: dict[str, dict[str, list[Any]]] = {}
    for j, entity in enumerate(cur):
        if j not in paired:
            status[entity.id] = "added"
            continue
        fields = _changed_fields(entity, old[paired[j]])
        status[entity.id] = "changed" if fields else "same"
        if fields:
            changes[entity.id] = fields
    owner = _owner(other)
    kept = set(paired.values())
    removed = [{**_entity_json(e), "criterion": owner[e.id]} for i, e in enumerate(old) if i not in kept]
    counts = {name: sum(1 for s in status.values() if s == name) for name in ("added", "changed", "same")}
    return {"status": status, "changes": changes, "removed": removed, "counts": {**counts, "removed": len(removed)}}
