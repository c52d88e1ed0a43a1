"""Build gold `TrialRecord` JSON files from the compact annotation files.

    python -m evals.tools.build_gold                       # evals/gold_src -> evals/gold
    python -m evals.tools.build_gold --src evals/gold_src_pass2 --out evals/gold_pass2
    python -m evals.tools.build_gold --check               # build in memory, compare with --out

Each compact file names its source; the document is read with the pipeline's own ingest and
segmenter, so gold offsets are the offsets the pipeline produces. Annotated texts are located
inside their criterion's span (never by hand-written offsets). Any text that cannot be found, or
any record that fails schema validation, is reported as `file:line: problem` and nothing for that
document is written.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from pipeline import __version__
from pipeline.schema import (
    Annotation,
    Criterion,
    Entity,
    Evidence,
    Provenance,
    Temporal,
    Trial,
    TrialRecord,
    Value,
)

from .compact import (
    LIST_FIELDS,
    CompactDoc,
    CompactError,
    CriterionSpec,
    EntitySpec,
    Located,
    TrialOverride,
    parse_compact,
)

REPO = Path(__file__).resolve().parents[2]


class _Sources:
    """Ingested documents by (source path, doc_id); each source file is read once."""

    def __init__(self) -> None:
        self._docs: dict[Path, dict[str, object]] = {}

    def get(self, source: str, doc_id: str, where: str):
        from pipeline.ingest import Document, iter_documents

        path = (REPO / source).resolve()
        if path not in self._docs:
            if not path.is_file():
                raise CompactError(f"{where}: source {source!r} not found (looked at {path})")
            self._docs[path] = {d.doc_id: d for d in iter_documents([path]) if isinstance(d, Document)}
        doc = self._docs[path].get(doc_id)
        if doc is None:
            raise CompactError(f"{where}: no document with doc_id {doc_id!r} in {source}")
        return doc


def segment_document(document) -> TrialRecord:
    """The pipeline's segmentation of an ingested document (criteria, page metadata, warnings)."""
    from pipeline.segment import segment

    return segment(document)


def find_span(
    text: str, located: Located, lo: int, hi: int, near: tuple[int, int], where: str
) -> tuple[int, int]:
    """Absolute (start, end) of `located` inside text[lo:hi].

    Exact match first; failing that, any run of whitespace in the annotation matches any run of
    whitespace in the source (for concepts wrapped across lines). With no `@k`, the occurrence
    with the smallest gap to the `near` span is taken, ties going to the one after it.
    """
    window = text[lo:hi]
    hits = [(m.start(), m.end()) for m in re.finditer(re.escape(located.text), window)]
    if not hits:
        pattern = r"\s+".join(re.escape(word) for word in located.text.split())
        hits = [(m.start(), m.end()) for m in re.finditer(pattern, window)]
    if not hits:
        raise CompactError(f"{where}: {located.text!r} not found in the criterion text {window!r}")
    if located.occurrence is None:
        start, end = min(hits, key=lambda h: (_gap((lo + h[0], lo + h[1]), near), -h[0]))
    elif located.occurrence > len(hits):
        raise CompactError(f"{where}: {located.text!r} occurs {len(hits)} time(s), not @{located.occurrence}")
    else:
        start, end = hits[located.occurrence - 1]
    return lo + start, lo + end


def _gap(a: tuple[int, int], b: tuple[int, int]) -> int:
    """Characters between two spans (0 when they touch or overlap)."""
    return max(0, a[0] - b[1], b[0] - a[1])


def build_entity(spec: EntitySpec, criterion: Criterion, source_text: str) -> Entity:
    lo, hi = criterion.start, criterion.end
    start, end = find_span(source_text, spec.text, lo, hi, (lo, lo), spec.where)
    entity = Entity(id="", type=spec.type, text=source_text[start:end], start=start, end=end, negated=spec.negated)
    if spec.value is not None:
        v = spec.value
        s, e = find_span(source_text, v.text, lo, hi, (start, end), v.where)
        entity.value = Value(text=source_text[s:e], start=s, end=e, comparator=v.comparator, low=v.low,
                             high=v.high, unit=v.unit)
    if spec.temporal is not None:
        t = spec.temporal
        s, e = find_span(source_text, t.text, lo, hi, (start, end), t.where)
        entity.temporal = Temporal(text=source_text[s:e], start=s, end=e, direction=t.direction, anchor=t.anchor,
                                   min_days=t.min_days, max_days=t.max_days)
    return entity


def _inside_word(text: str, start: int, end: int) -> bool:
    """True when the span cuts a word: "men" inside "women" is usually a wrong occurrence."""
    cut_left = start > 0 and text[start - 1].isalnum() and text[start].isalnum()
    cut_right = end < len(text) and text[end].isalnum() and text[end - 1].isalnum()
    return cut_left or cut_right


def _criterion_entities(
    cid: str,
    specs: list[EntitySpec],
    criterion: Criterion,
    source_text: str,
    problems: list[str],
    warnings: list[str],
) -> list[Entity]:
    """The criterion's entities sorted by position and numbered; problems are appended, not raised."""
    entities: list[Entity] = []
    seen: set[tuple[str, int, int]] = set()
    for spec in specs:
        try:
            entity = build_entity(spec, criterion, source_text)
        except CompactError as exc:
            problems.append(str(exc))
            continue
        if _inside_word(source_text, entity.start, entity.end):
            warnings.append(f"{spec.where}: warning: {entity.text!r} starts or ends inside a word (wrong @k?)")
        key = (str(entity.type), entity.start, entity.end)
        if key in seen:
            problems.append(f"{spec.where}: duplicate {entity.type} {entity.text!r}")
        seen.add(key)
        entities.append(entity)
    entities.sort(key=lambda e: (e.start, e.end, str(e.type)))
    for n, entity in enumerate(entities, 1):
        entity.id = f"{cid}.e{n}"
    return entities


def criteria_from_specs(specs: list[CriterionSpec], document) -> list[Criterion]:
    """Criteria written out in a `criteria:` block, located in order after the criteria start."""
    text = document.source_text
    cursor = document.criteria_start
    criteria: list[Criterion] = []
    for spec in specs:
        first = find_span(text, Located(spec.first, 1), cursor, len(text), (cursor, cursor), spec.where)
        last = find_span(text, Located(spec.last, 1), first[0], len(text), first, spec.where)
        kind = "inclusion" if spec.id.startswith("inc") else "exclusion"
        criteria.append(Criterion(id=spec.id, kind=kind, text=text[first[0]:last[1]], start=first[0], end=last[1],
                                  parent=spec.parent))
        cursor = first[0] + 1
    return criteria


def drop_criteria(criteria: list[Criterion], drop: list[tuple[str, str]]) -> list[Criterion]:
    """Remove criteria the guideline does not count (e.g. trailing boilerplate) and their sub-items."""
    ids = {c.id for c in criteria}
    for cid, where in drop:
        if cid not in ids:
            raise CompactError(f"{where}: cannot drop {cid!r}: no such criterion")
    gone = {cid for cid, _ in drop}
    kept = []
    for criterion in criteria:
        if criterion.id in gone or criterion.parent in gone:
            gone.add(criterion.id)
        else:
            kept.append(criterion)
    return kept


def apply_trial_overrides(trial: Trial, overrides: list[TrialOverride], source_text: str) -> Trial:
    """Replace metadata fields; a list field's first override clears the ingested list."""
    trial = trial.model_copy(deep=True)
    cleared: set[str] = set()
    for item in overrides:
        evidence = None
        if item.value is not None:
            start = source_text.find(item.text) if item.text else -1
            if item.text and start < 0:
                raise CompactError(f"{item.where}: evidence text {item.text!r} not found in the source text")
            evidence = Evidence(value=item.value, text=item.text or str(item.value),
                                start=start if start >= 0 else None,
                                end=start + len(item.text) if start >= 0 else None)
        if item.field in LIST_FIELDS:
            items = [] if item.field not in cleared else getattr(trial, item.field)
            cleared.add(item.field)
            setattr(trial, item.field, items + ([evidence] if evidence else []))
        else:
            setattr(trial, item.field, evidence)
    return trial


def build_record(compact: CompactDoc, sources: _Sources, warnings: list[str] | None = None) -> TrialRecord:
    """The validated gold record for one compact file; non-fatal remarks are appended to `warnings`."""
    warnings = [] if warnings is None else warnings
    header = compact.header
    top = f"{compact.path}:1"
    document = sources.get(header["source"], header["doc"], top)
    segmented = segment_document(document)
    written = compact.criteria
    criteria = segmented.criteria if written is None else criteria_from_specs(written, document)
    criteria = drop_criteria(criteria, compact.drop)
    by_id = {c.id: c for c in criteria}
    problems: list[str] = []
    for cid, specs in compact.sections.items():
        criterion = by_id.get(cid)
        if criterion is None:
            problems.append(f"{compact.section_lines[cid]}: no criterion {cid!r} in the segmentation "
                            f"(have {', '.join(by_id) or 'none'})")
            continue
        criterion.entities = _criterion_entities(cid, specs, criterion, document.source_text, problems, warnings)
    if problems:
        raise CompactError("\n".join(problems))
    source = document.source.model_copy(update={"path": header["source"]})
    try:
        return TrialRecord(
            doc_id=segmented.doc_id,
            source=source,
            source_text=document.source_text,
            warnings=list(segmented.warnings),
            trial=apply_trial_overrides(segmented.trial, compact.trial, document.source_text),
            criteria=criteria,
            provenance=Provenance(backend="gold", pipeline_version=__version__),
            annotation=Annotation(method=header["method"], checked_by=header["annotator"], date=header["date"],
                                  notes=header.get("notes", "")),
        )
    except ValueError as exc:
        raise CompactError(f"{top}: record does not validate: {exc}") from None


def record_json(record: TrialRecord) -> str:
    return json.dumps(record.model_dump(mode="json"), indent=1, ensure_ascii=False) + "\n"


def build_all(src: Path, sources: _Sources | None = None) -> tuple[dict[str, str], list[str], list[str]]:
    """({doc_id: json text}, [errors], [warnings]) for every `*.txt` compact file in src."""
    sources = sources or _Sources()
    built: dict[str, str] = {}
    errors: list[str] = []
    warnings: list[str] = []
    for path in sorted(src.glob("*.txt")):
        try:
            compact = parse_compact(path)
            if compact.header["doc"] != path.stem:
                raise CompactError(f"{path}:1: doc {compact.header['doc']!r} does not match the file name")
            built[path.stem] = record_json(build_record(compact, sources, warnings))
        except CompactError as exc:
            errors.append(str(exc))
    return built, errors, warnings


def list_segmentation(path: Path) -> int:
    """Print criterion ids and texts for the document a compact file names (its header is enough)."""
    try:
        compact = parse_compact(path)
        document = _Sources().get(compact.header["source"], compact.header["doc"], f"{path}:1")
    except CompactError as exc:
        print(exc, file=sys.stderr)
        return 1
    record = segment_document(document)
    for warning in record.warnings:
        print(f"# warning: {warning}")
    for criterion in record.criteria:
        parent = f" < {criterion.parent}" if criterion.parent else ""
        print(f"[{criterion.id}]{parent} {criterion.text!r}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", type=Path, default=REPO / "evals" / "gold_src")
    parser.add_argument("--out", type=Path, default=REPO / "evals" / "gold")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    parser.add_argument("--list", type=Path, metavar="FILE", help="print the segmentation a compact file starts from")
    args = parser.parse_args(argv)
    if args.list:
        return list_segmentation(args.list)
    if not args.src.is_dir():
        print(f"{args.src}: no such directory", file=sys.stderr)
        return 2
    built, errors, warnings = build_all(args.src)
    for message in warnings + errors:
        print(message, file=sys.stderr)
    if args.check:
        stale = [d for d, text in built.items()
                 if not (args.out / f"{d}.json").is_file() or (args.out / f"{d}.json").read_text("utf-8") != text]
        extra = sorted({p.stem for p in args.out.glob("*.json")} - set(built)) if args.out.is_dir() else []
        for doc_id in stale:
            print(f"{args.out / (doc_id + '.json')}: out of date; rebuild with python -m evals.tools.build_gold",
                  file=sys.stderr)
        for doc_id in extra:
            print(f"{args.out / (doc_id + '.json')}: has no compact file in {args.src}", file=sys.stderr)
        return 1 if errors or stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for doc_id, text in built.items():
        (args.out / f"{doc_id}.json").write_text(text, encoding="utf-8")
    records = [json.loads(t) for t in built.values()]
    n_crit = sum(len(r["criteria"]) for r in records)
    n_ent = sum(len(c["entities"]) for r in records for c in r["criteria"])
    print(f"wrote {len(built)} records to {args.out} ({n_crit} criteria, {n_ent} entities); {len(errors)} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
