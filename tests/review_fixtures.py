"""Hand-made run, gold and second-run records for the review tests (offsets computed, never typed)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipeline.review.server import GoldStore, ReviewHTTPServer
from pipeline.schema import Annotation, Criterion, Entity, Evidence, Source, Temporal, Trial, TrialRecord, Value

TRIAL_A = """Title: Osimertinib after chemotherapy in NSCLC
Inclusion Criteria:
1. Adults aged 18 years or older with non-small cell lung cancer.
2. ECOG performance status <= 2 and hemoglobin >= 9 g/dL.
Exclusion Criteria:
1. Prior treatment with an EGFR inhibitor within 28 days before the first dose.
2. Active hepatitis B or hepatitis C infection.
3. Pregnant or breastfeeding women.
"""

TRIAL_B = """Inclusion Criteria:
- Type 2 diabetes mellitus diagnosed at least 6 months before screening
- HbA1c between 7.0% and 10.5%
  - on stable metformin dose
Exclusion Criteria:
- History of pancreatitis
"""

PROBE = """Title: probe <script>window.__pwned=1</script>
Inclusion Criteria:
1. Patients with <img src=x onerror="window.__pwned=1"> lesions & "quoted" text.
Exclusion Criteria:
1. Any </script><script>window.__pwned=1</script> allergy.
"""

# (criterion id, kind, first words of the criterion line, parent, entities as (type, text, extra))
SPEC_A = [
    (
        "inc-1",
        "inclusion",
        "1. Adults aged",
        None,
        [
            ("Person", "Adults", {}),
            ("Person", "aged 18 years or older", {"value": ("18 years or older", ">=", 18, None, "years")}),
            ("Condition", "non-small cell lung cancer", {}),
            ("Condition", "lung cancer", {}),
        ],
    ),
    (
        "inc-2",
        "inclusion",
        "2. ECOG",
        None,
        [
            ("Measurement", "ECOG performance status", {"value": ("<= 2", "<=", None, 2, None)}),
            ("Measurement", "hemoglobin", {"value": (">= 9 g/dL", ">=", 9, None, "g/dL")}),
        ],
    ),
    (
        "exc-1",
        "exclusion",
        "1. Prior treatment",
        None,
        [
            (
                "Drug",
                "EGFR inhibitor",
                {"temporal": ("within 28 days before the first dose", "before", "first_dose", 0, 28)},
            ),
            ("Procedure", "Prior treatment", {}),
        ],
    ),
    (
        "exc-2",
        "exclusion",
        "2. Active hepatitis",
        None,
        [
            ("Condition", "Active hepatitis B", {}),
            ("Condition", "hepatitis B or hepatitis C infection", {}),
            ("Condition", "hepatitis C", {}),
        ],
    ),
    (
        "exc-3",
        "exclusion",
        "3. Pregnant",
        None,
        [
            ("Condition", "Pregnant", {}),
            ("Observation", "breastfeeding", {}),
            ("Person", "women", {}),
        ],
    ),
]

SPEC_B = [
    (
        "inc-1",
        "inclusion",
        "- Type 2",
        None,
        [
            (
                "Condition",
                "Type 2 diabetes mellitus",
                {"temporal": ("at least 6 months before screening", "before", "screening", 180, None)},
            ),
        ],
    ),
    (
        "inc-2",
        "inclusion",
        "- HbA1c",
        None,
        [
            ("Measurement", "HbA1c", {"value": ("between 7.0% and 10.5%", "between", 7.0, 10.5, "%")}),
        ],
    ),
    ("inc-2.1", "inclusion", "  - on stable", "inc-2", [("Drug", "metformin", {})]),
    ("exc-1", "exclusion", "- History of", None, [("Condition", "pancreatitis", {"negated": True})]),
]

SPEC_PROBE = [
    (
        "inc-1",
        "inclusion",
        "1. Patients with",
        None,
        [
            ("Condition", '<img src=x onerror="window.__pwned=1"> lesions', {}),
            ("Observation", '"quoted" text', {}),
        ],
    ),
    (
        "exc-1",
        "exclusion",
        "1. Any",
        None,
        [
            ("Condition", "</script><script>window.__pwned=1</script> allergy", {}),
        ],
    ),
]


def _span(text: str, needle: str, lo: int, hi: int) -> tuple[int, int]:
    start = text.find(needle, lo, hi)
    assert start >= 0, f"{needle!r} not found in {text[lo:hi]!r}"
    return start, start + len(needle)


def _entity(text: str, eid: str, lo: int, hi: int, etype: str, etext: str, extra: dict[str, Any]) -> Entity:
    start, end = _span(text, etext, lo, hi)
    fields: dict[str, Any] = {"negated": extra.get("negated", False)}
    if "value" in extra:
        vtext, comparator, low, high, unit = extra["value"]
        vs, ve = _span(text, vtext, lo, hi)
        fields["value"] = Value(text=vtext, start=vs, end=ve, comparator=comparator, low=low, high=high, unit=unit)
    if "temporal" in extra:
        ttext, direction, anchor, mn, mx = extra["temporal"]
        ts, te = _span(text, ttext, lo, hi)
        fields["temporal"] = Temporal(
            text=ttext, start=ts, end=te, direction=direction, anchor=anchor, min_days=mn, max_days=mx
        )
    return Entity(id=eid, type=etype, text=etext, start=start, end=end, **fields)


def build_record(doc_id: str, text: str, spec: list, warnings: list[str] | None = None) -> TrialRecord:
    """A TrialRecord whose criteria are whole lines of `text` and whose entities are found in them."""
    criteria = []
    for cid, kind, head, parent, entities in spec:
        start = text.index("\n" + head) + 1
        end = text.index("\n", start)
        ents = [_entity(text, f"{cid}.e{n}", start, end, *e) for n, e in enumerate(entities, 1)]
        criteria.append(
            Criterion(id=cid, kind=kind, text=text[start:end], start=start, end=end, parent=parent, entities=ents)
        )
    title_line = text.split("\n", 1)[0]
    trial = Trial()
    if title_line.startswith("Title: "):
        trial.title = Evidence(text=title_line[7:], start=7, end=len(title_line), value=title_line[7:])
    return TrialRecord(
        doc_id=doc_id,
        source=Source(path=f"tests/{doc_id}.txt", format="text", sha256=hashlib.sha256(text.encode()).hexdigest()),
        source_text=text,
        warnings=warnings or [],
        trial=trial,
        criteria=criteria,
    )


def sample_records() -> list[TrialRecord]:
    """Three documents: nested and crossing entities, a sub-criterion, and a script-injection probe."""
    return [
        build_record("NCT-A", TRIAL_A, SPEC_A),
        build_record("NCT-B", TRIAL_B, SPEC_B, warnings=["criterion inc-2.1: indentation guessed <b>bold</b>"]),
        build_record("probe-xss", PROBE, SPEC_PROBE, warnings=['<img src=x onerror="window.__pwned=1">']),
    ]


def _edit_entities(record: TrialRecord, edit: Any) -> TrialRecord:
    data = record.model_dump(mode="json")
    for criterion in data["criteria"]:
        criterion["entities"] = [e for e in (edit(criterion["id"], dict(e)) for e in criterion["entities"]) if e]
    return TrialRecord.model_validate(data)


def gold_for_a(record: TrialRecord) -> TrialRecord:
    """Gold for NCT-A: drops 'Prior treatment' (-> fp), narrows 'Adults' to 'Adult' (-> partial), adds a
    Visit 'first dose' that the run missed (-> miss), types 'breastfeeding' a Condition (-> type), says
    hemoglobin >= 10 (-> value differs) and gives 'EGFR inhibitor' no time window (-> time window differs)."""
    text = record.source_text

    def edit(cid: str, e: dict) -> dict | None:
        if e["text"] == "Prior treatment":
            return None
        if e["text"] == "Adults":
            e.update(text="Adult", end=e["start"] + 5)
        if e["text"] == "breastfeeding":
            e["type"] = "Condition"
        if e["text"] == "hemoglobin":
            e["value"] = {**e["value"], "low": 10.0}
        if e["text"] == "EGFR inhibitor":
            e["temporal"] = None
        return e

    gold = _edit_entities(record, edit).model_dump(mode="json")
    exc1 = next(c for c in gold["criteria"] if c["id"] == "exc-1")
    start, end = _span(text, "first dose", exc1["start"], exc1["end"])
    exc1["entities"].append({"id": "exc-1.e9", "type": "Visit", "text": "first dose", "start": start, "end": end})
    gold["annotation"] = Annotation(method="hand-made test gold", checked_by="tests", date="2026-11-21").model_dump()
    return TrialRecord.model_validate(gold)


def other_run_a(record: TrialRecord) -> TrialRecord:
    """A second run of NCT-A: lacks 'women' (-> added now), negates 'Pregnant' (-> changed), has an extra
    Device 'dL' that the current run lacks (-> removed)."""
    text = record.source_text

    def edit(cid: str, e: dict) -> dict | None:
        if e["text"] == "women":
            return None
        if e["text"] == "Pregnant":
            e["negated"] = True
        return e

    other = _edit_entities(record, edit).model_dump(mode="json")
    inc2 = next(c for c in other["criteria"] if c["id"] == "inc-2")
    start, end = _span(text, "dL", inc2["start"], inc2["end"])
    inc2["entities"].append({"id": "inc-2.e7", "type": "Device", "text": "dL", "start": start, "end": end})
    return TrialRecord.model_validate(other)


def write_jsonl(folder: Path, records: list[TrialRecord]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "records.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in records), encoding="utf-8")
    return path


def write_gold(folder: Path, records: list[TrialRecord]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        (folder / f"{record.doc_id}.json").write_text(record.model_dump_json(indent=1), encoding="utf-8")


def review_inputs(tmp: Path) -> dict[str, Path]:
    """A run dir, a gold dir (gold for NCT-A) and a second run dir, written under `tmp`."""
    records = sample_records()
    run, gold, other = tmp / "run", tmp / "gold", tmp / "other"
    write_jsonl(run, records)
    write_gold(gold, [gold_for_a(records[0])])
    write_jsonl(other, [other_run_a(records[0]), *records[1:]])
    return {"run": run, "gold": gold, "other": other}


@contextmanager
def running_review_server(
    tmp_path: Path, records: list[TrialRecord] | None = None, with_gold: bool = True
) -> Iterator[ReviewHTTPServer]:
    """A review server on a random loopback port over `records` (default: the sample records, with NCT-A
    already in gold)."""
    records = records or sample_records()
    gold = tmp_path / "gold"
    gold.mkdir()
    if with_gold:
        (gold / "NCT-A.json").write_text(gold_for_a(records[0]).model_dump_json(), encoding="utf-8")
    httpd = ReviewHTTPServer(GoldStore(records, gold))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
