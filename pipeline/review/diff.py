"""Entity-level comparisons shown on the review page, computed here so the page never re-implements matching.

Against gold: a predicted entity is `tp` when it matches a gold entity strictly (same type and span),
`partial` when it matches only relaxed (same type, overlapping span; the gold entity is reported
beside it), otherwise `fp`; unmatched gold entities are misses. Against another run: entities are
paired with `match_spans(relaxed=True)` and reported as `added`, `changed` (with the differing
fields) or `same`; unpaired entities of the other run are `removed`.
"""

from __future__ import annotations

from typing import Any

from pipeline.evaluate.match import count, match_spans
from pipeline.schema import Entity, TrialRecord

COMPARED_FIELDS = ("type", "text", "start", "end", "negated", "value", "temporal", "alignment")


def _entity_json(entity: Entity) -> dict[str, Any]:
    return entity.model_dump(mode="json")


def _owner(record: TrialRecord) -> dict[str, str]:
    return {e.id: c.id for c in record.criteria for e in c.entities}


def gold_diff(pred: TrialRecord, gold: TrialRecord) -> dict[str, Any]:
    """Per-entity status of `pred` against `gold`, the missed gold entities and the strict/relaxed scores."""
    if pred.source_text != gold.source_text:
        return {"error": f"gold for {pred.doc_id} was made from a different source text; offsets do not compare"}
    p_ents, g_ents = pred.entities(), gold.entities()
    strict = dict((j, i) for i, j in match_spans(g_ents, p_ents, relaxed=False))
    relaxed = dict((j, i) for i, j in match_spans(g_ents, p_ents, relaxed=True))
    status = {}
    for j, entity in enumerate(p_ents):
        status[entity.id] = "tp" if j in strict else "partial" if j in relaxed else "fp"
    matched_gold = set(relaxed.values())
    owner = _owner(gold)
    partial = {
        p_ents[j].id: {**_entity_json(g_ents[i]), "criterion": owner[g_ents[i].id]}
        for j, i in relaxed.items()
        if j not in strict
    }
    missed = [{**_entity_json(g), "criterion": owner[g.id]} for i, g in enumerate(g_ents) if i not in matched_gold]
    return {
        "status": status,
        "partial": partial,
        "missed": missed,
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
