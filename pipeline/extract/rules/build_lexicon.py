"""Rebuild the shipped lexicon from the Chia corpus, reproducibly.

    python -m pipeline.extract.rules.build_lexicon ../shared/data/chia-dev [--hint FILE] [-o lexicon.tsv]

Learns from the 8 domain types only, single-fragment entities (a discontinuous span has no one
phrase to look up). Drug and condition names listed by the registry trials of
../shared/data/hint/hint-trials.jsonl (ClinicalTrials.gov, public data) are added as a vocabulary
when that file is present (`--hint none` to leave it out); the trials of the evaluation gold set
(`evals/gold/*.json`) are left out of that vocabulary so the gold scores measure unseen trials.
The output carries the Chia attribution (CC BY 4.0) in its header; beside it, `lexicon.training.tsv`
lists a digest of every training text, so `trialstruct eval --chia` can warn that it scores in-sample.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.chia import DOMAIN_TYPES, ChiaDocument, read_chia_dir
from pipeline.extract.rules.lexicon import key_of, learn_lexicon, save_training_record, tokenize, training_record_path

DEFAULT_OUTPUT = Path(__file__).with_name("lexicon.tsv")
ATTRIBUTION = """trialstruct rules-backend lexicon, derived from the Chia corpus:
Kury F. et al. "Chia, a large annotated corpus of clinical trial eligibility criteria",
Scientific Data 7:281 (2020), doi:10.6084/m9.figshare.11855817. Licence: CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/). Changes: phrases and words were counted from the
annotations of {trials} trials ({documents} documents) and filtered by estimated precision;
{vocabulary} registry drug/condition names (ClinicalTrials.gov via {hint}) were added as a vocabulary.
Built by: python -m pipeline.extract.rules.build_lexicon <chia-dir>
Columns: table (phrase | head | plain | upper), key (lower-cased tokens), type, score."""


def annotated_pairs(docs: list[ChiaDocument]) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """(text, [(start, end, type)]) for every document, domain types, one fragment each."""
    return [
        (doc.text, [(e.start, e.end, e.type) for e in doc.entities if e.type in DOMAIN_TYPES and len(e.fragments) == 1])
        for doc in docs
    ]


GOLD_DIR = Path(__file__).resolve().parents[3] / "evals" / "gold"


def hint_vocabulary(path: Path, exclude: frozenset[str] = frozenset()) -> dict[str, str]:
    """Drug and condition names listed by registry trials (HINT `drugs`/`diseases`), as lexicon keys;
    trials whose `nct_id` is in `exclude` contribute nothing."""
    vocabulary: dict[str, str] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                row = json.loads(line)
                if row.get("nct_id") in exclude:
                    continue
                names = [(n, "Drug") for n in ast.literal_eval(row["drugs"])]
                names += [(n, "Condition") for n in ast.literal_eval(row["diseases"])]
            except (ValueError, SyntaxError, KeyError) as exc:
                raise ValueError(f"{path}:{number}: cannot read drugs/diseases ({exc})") from exc
            for name, typ in names:
                key = key_of(tokenize(name))
                if "," not in key and 0 < len(key.split()) <= 4:
                    vocabulary.setdefault(key, typ)
    return vocabulary


@dataclass
class TrainingInput:
    """What the lexicon builder and the tagger trainer learn from, read from their command line."""

    docs: list[ChiaDocument]
    vocabulary: dict[str, str]
    hint: Path
    output: Path


def training_input(program: str, description: str, default_output: Path, argv: list[str] | None) -> TrainingInput:
    """Parse `<chia-dir> [--hint FILE] [-o OUTPUT]`, read the Chia documents and the registry vocabulary
    (gold trials left out); exits with status 2 and one line on stderr when there are no documents."""
    parser = argparse.ArgumentParser(prog=program, description=description)
    parser.add_argument("chia_dir", type=Path)
    parser.add_argument("--hint", help="HINT JSONL (default: <chia-dir>/../hint/hint-trials.jsonl; 'none': skip)")
    parser.add_argument("-o", "--output", type=Path, default=default_output)
    args = parser.parse_args(argv)
    docs = read_chia_dir(args.chia_dir) if args.chia_dir.is_dir() else []
    if not docs:
        print(f"{program}: no Chia .txt documents in {args.chia_dir}", file=sys.stderr)
        raise SystemExit(2)
    hint = Path(args.hint) if args.hint else args.chia_dir.parent / "hint" / "hint-trials.jsonl"
    gold_ids = frozenset(path.stem for path in GOLD_DIR.glob("*.json"))
    vocabulary = hint_vocabulary(hint, gold_ids) if args.hint != "none" and hint.is_file() else {}
    return TrainingInput(docs, vocabulary, hint, args.output)


def main(argv: list[str] | None = None) -> int:
    given = training_input("build_lexicon", __doc__.splitlines()[0], DEFAULT_OUTPUT, argv)
    docs, vocabulary = given.docs, given.vocabulary
    lexicon = learn_lexicon(annotated_pairs(docs), vocabulary=vocabulary)
    header = ATTRIBUTION.format(
        trials=len({d.nct_id for d in docs}), documents=len(docs), vocabulary=len(vocabulary), hint=given.hint.name
    )
    lexicon.save(given.output, header)
    training = training_record_path(given.output)
    note = f"Texts the lexicon {given.output.name} was learned from: file stem, SHA-256 of the text (16 hex digits)."
    save_training_record(training, [(doc.doc_id, doc.text) for doc in docs], note)
    sizes = f"{len(lexicon.phrases)} phrases, {len(lexicon.heads)} heads, {len(lexicon.plain)} plain"
    print(f"wrote {given.output}: {sizes}; {training}: {len(docs)} training texts")
    return 0


if __name__ == "__main__":
    sys.exit(main())
