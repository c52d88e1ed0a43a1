"""Cross-validated score of the rules tagger on chia-dev, with the naive gazetteer as baseline.

    python evals/chia_cv.py [../shared/data/chia-dev] [--folds 5] [--system rules --predictions FILE.jsonl]

Trials (not files: a trial's inclusion and exclusion texts stay together) are split into 5 folds.
Each fold learns a lexicon on the other 4/5 and tags the held-out 1/5 the way `trialstruct run` and
`trialstruct eval --chia` do: each file ingested, segmented into criteria (one a line), and every
criterion tagged by the rules backend, with that fold's lexicon and tagger. The table shows P/R/F1 summed
over the folds (micro) for strict and relaxed matching, overall and per type, then the relaxed
micro-F1 of each held-out fold with their mean, for:
- naive: every annotated phrase, majority type, greedy longest match over the whole text (no filtering,
  no rules, no segmentation);
- lexicon: the rules backend without its sequence tagger (`tag_text` with a lexicon learned the same
  way as build_lexicon);
- rules: the rules backend as shipped: lexicon plus the sequence tagger, trained inside the fold the same
  way as train_tagger (needs python-crfsuite: pip install -e ".[train]").
`--predictions` writes every held-out document's predicted entities (type, offsets, text, value and time
window spans) as one JSON line, for error analysis against the `.ann` files; each was made by a lexicon
and tagger that never saw the document.
A second score leaves out the stretches Chia labels as criteria it did not annotate (`unannotated_spans`:
pregnancy, non-representable and non-query-able criteria, consent, willingness, other trials). Chia has 167
entities there. evals/GUIDELINE.md section 2 asks for names in every criterion except consent, willingness,
compliance, other trials and investigator judgement, so part of what a system finds there is right by the
guideline and wrong by Chia; the score without them shows how much of the gap that is.
Value/temporal attachment: among relaxed-matched gold entities that Chia links to a Value
(Has_value) or Temporal (Has_temporal), the share whose predicted value/temporal overlaps that span.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from statistics import mean, pstdev
from typing import TextIO

from pipeline.chia import DOMAIN_TYPES, ChiaDocument, read_chia_dir, unannotated_spans
from pipeline.config import RunConfig
from pipeline.evaluate.match import Counts, count, match_spans
from pipeline.extract.rules import Backend
from pipeline.extract.rules.build_lexicon import annotated_pairs, hint_vocabulary
from pipeline.extract.rules.crf import CrfTagger
from pipeline.extract.rules.lexicon import Lexicon, learn_lexicon
from pipeline.extract.rules.tagger import gazetteer_matches
from pipeline.extract.rules.train_tagger import folds_by_trial
from pipeline.extract.rules.train_tagger import train as train_tagger
from pipeline.ingest.text import read_text_document
from pipeline.schema import Entity
from pipeline.segment import segment

DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "chia-dev"


def gold_entities(doc: ChiaDocument) -> list:
    return [e for e in doc.entities if e.type in DOMAIN_TYPES]


def _overlaps(span: object | None, other: object) -> bool:
    return span is not None and span.start < other.end and other.start < span.end


def attachment(doc: ChiaDocument, gold: list, pred: list, counts: dict[str, list[int]]) -> None:
    """Count gold Has_value/Has_temporal links whose matched prediction carries an overlapping span."""
    by_id = {e.id: e for e in doc.entities}
    links = defaultdict(list)
    for relation, a, b in doc.relations:
        if relation in ("Has_value", "Has_temporal") and a in by_id and b in by_id:
            links[(relation, a)].append(by_id[b])
    for gi, pj in match_spans(gold, pred, relaxed=True):
        for relation, attr in (("Has_value", "value"), ("Has_temporal", "temporal")):
            targets = links.get((relation, gold[gi].id))
            if targets:
                counts[attr][1] += 1
                counts[attr][0] += any(_overlaps(getattr(pred[pj], attr), t) for t in targets)


def predict(directory: Path, doc: ChiaDocument, lexicon: Lexicon, tagger: CrfTagger | None) -> list[Entity]:
    """The entities the rules backend gives the document, as `trialstruct run` makes it (offsets into its text)."""
    if not doc.text.strip():
        return []  # an empty file is an input error to the pipeline, and has no entities
    path = directory / f"{doc.doc_id}.txt"
    document = read_text_document(path, path.read_bytes())
    if isinstance(document, Exception) or document.source_text != doc.text:
        raise SystemExit(f"chia_cv: {path}: ingested text differs from the corpus text")
    backend = Backend(RunConfig(backend="rules"), lexicon, tagger=tagger or False)
    return backend.extract(segment(document)).record.entities()


def in_silent_spans(doc: ChiaDocument, entities: list) -> list:
    """The entities overlapping a stretch of text that Chia labels as left unannotated (`unannotated_spans`)."""
    spans = unannotated_spans(doc)
    return [e for e in entities if any(a < e.end and e.start < b for a, b in spans)]


def evaluate(
    directory: Path, folds: list[list[ChiaDocument]], system: str, dump: TextIO | None = None
) -> tuple[dict, dict, dict, list[float], dict]:
    """Counts summed over folds (strict, relaxed, attachments), the relaxed micro-F1 of each fold, and the
    relaxed counts again without what lies in the stretches Chia labels as left unannotated (`annotated`, with
    the number of gold and predicted entities left out there).

    With `dump`, each held-out document's predictions are written to it as one JSON line (for error
    analysis: every prediction there was made by a model that never saw the document)."""
    strict: dict[str, Counts] = defaultdict(Counts)
    relaxed: dict[str, Counts] = defaultdict(Counts)
    attached: dict[str, list[int]] = {"value": [0, 0], "temporal": [0, 0]}
    fold_f1: list[float] = []
    annotated = {"counts": Counts(), "silent gold": 0, "silent predicted": 0}
    for i, held_out in enumerate(folds):
        before = sum(relaxed.values(), Counts())
        train = [d for j, fold in enumerate(folds) if j != i for d in fold]
        lexicon, tagger = learn(train, system)
        for doc in held_out:
            gold = gold_entities(doc)
            if system == "naive":
                pred: list = gazetteer_matches(doc.text, lexicon)
            else:
                pred = predict(directory, doc, lexicon, tagger)
            for typ in DOMAIN_TYPES:
                g = [e for e in gold if e.type == typ]
                p = [e for e in pred if e.type == typ]
                strict[typ] += count(g, p, relaxed=False)
                relaxed[typ] += count(g, p, relaxed=True)
            attachment(doc, gold, pred, attached)
            silent_gold, silent_pred = in_silent_spans(doc, gold), in_silent_spans(doc, pred)
            annotated["silent gold"] += len(silent_gold)
            annotated["silent predicted"] += len(silent_pred)
            for typ in DOMAIN_TYPES:
                g = [e for e in gold if e.type == typ and e not in silent_gold]
                p = [e for e in pred if e.type == typ and e not in silent_pred]
                annotated["counts"] += count(g, p, relaxed=True)
            if dump is not None:
                row = {"doc_id": doc.doc_id, "fold": i, "entities": [_as_dict(e) for e in pred]}
                dump.write(json.dumps(row) + "\n")
        after = sum(relaxed.values(), Counts())
        fold_f1.append(Counts(after.tp - before.tp, after.fp - before.fp, after.fn - before.fn).f1)
    return strict, relaxed, attached, fold_f1, annotated


def _as_dict(entity: Entity) -> dict:
    """A prediction as plain JSON: type, span and (rules backend) its value and time window texts."""
    row: dict = {"type": str(entity.type), "start": entity.start, "end": entity.end, "text": entity.text}
    for attr in ("value", "temporal"):
        span = getattr(entity, attr, None)
        if span is not None:
            row[attr] = [span.start, span.end, span.text]
    return row


VOCABULARY: dict[str, str] = {}
SYSTEMS = ("naive", "lexicon", "rules")


def learn(train: list[ChiaDocument], system: str) -> tuple[Lexicon, CrfTagger | None]:
    """The lexicon (and for `rules` the sequence tagger) learned from the training folds only."""
    if system == "naive":
        pairs = annotated_pairs(train)
        return learn_lexicon(pairs, min_precision=0.0, min_head_count=10**9, learn_plain=False), None
    lexicon = learn_lexicon(annotated_pairs(train), vocabulary=VOCABULARY)
    if system == "lexicon":
        return lexicon, None
    return lexicon, CrfTagger(train_tagger(train, VOCABULARY), lexicon.word_type)


def _row(name: str, strict: Counts, relaxed: Counts) -> str:
    return (
        f"| {name:<12} | {strict.precision:.3f} | {strict.recall:.3f} | {strict.f1:.3f} "
        f"| {relaxed.precision:.3f} | {relaxed.recall:.3f} | {relaxed.f1:.3f} | {relaxed.tp + relaxed.fn:>5} |"
    )


def print_table(
    system: str, strict: dict, relaxed: dict, attached: dict, fold_f1: list[float], annotated: dict
) -> None:
    print(f"\n### {system}\n")
    print("| type         | strict P | strict R | strict F1 | relaxed P | relaxed R | relaxed F1 | gold |")
    print("|---|---|---|---|---|---|---|---|")
    total_s, total_r = sum(strict.values(), Counts()), sum(relaxed.values(), Counts())
    print(_row("micro", total_s, total_r))
    for typ in DOMAIN_TYPES:
        print(_row(typ, strict[typ], relaxed[typ]))
    spread = pstdev(fold_f1) if len(fold_f1) > 1 else 0.0
    folds = ", ".join(f"{f:.3f}" for f in fold_f1)
    print(f"\nrelaxed micro-F1 per held-out fold: {folds}; mean {mean(fold_f1):.3f} ± {spread:.3f}")
    kept = annotated["counts"]
    print(
        f"\nrelaxed micro-F1 outside the stretches Chia labels as left unannotated (Pregnancy_considerations, "
        f"Non-query-able, ...): P {kept.precision:.3f} R {kept.recall:.3f} F1 {kept.f1:.3f}; in them Chia has "
        f"{annotated['silent gold']} entities, this system {annotated['silent predicted']}"
    )
    for attr, (good, seen) in attached.items():
        if seen and system != "naive":
            print(f"\n{attr} attached on {good}/{seen} = {good / seen:.3f} of matched gold entities with a {attr}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chia_dir", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--hint", type=Path, default=DEFAULT_DIR.parent / "hint" / "hint-trials.jsonl")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--system", choices=(*SYSTEMS, "all"), default="all")
    parser.add_argument("--predictions", type=Path, help="write each held-out document's predictions here (JSONL)")
    args = parser.parse_args(argv)
    if not args.chia_dir.is_dir():
        print(f"chia_cv: {args.chia_dir} not found (need the chia-dev folder of ../shared/data)", file=sys.stderr)
        return 2
    if args.predictions and args.system == "all":
        parser.error("--predictions needs one --system")
    if args.hint.is_file():
        VOCABULARY.update(hint_vocabulary(args.hint))
    docs = read_chia_dir(args.chia_dir)
    folds = folds_by_trial(docs, args.folds, seed=13)
    print(f"{len(docs)} documents, {len({d.nct_id for d in docs})} trials, {args.folds} folds split by trial")
    for system in SYSTEMS if args.system == "all" else (args.system,):
        started = time.perf_counter()
        if args.predictions:
            with args.predictions.open("w", encoding="utf-8") as dump:
                print_table(system, *evaluate(args.chia_dir, folds, system, dump))
        else:
            print_table(system, *evaluate(args.chia_dir, folds, system))
        print(f"\n({system}: {time.perf_counter() - started:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
