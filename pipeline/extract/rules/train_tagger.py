"""Train the rules backend's sequence tagger (crf.py) on the Chia corpus, reproducibly.

    pip install -e ".[train]"
    python -m pipeline.extract.rules.train_tagger ../shared/data/chia-dev [--hint FILE] [-o tagger.tsv]

The tagger learns BIO labels of the 8 domain types (where Chia's entities overlap, the longer one wins)
from features that include the lexicon's matches. A discontinuous entity ('kidney ... failure' in 'kidney
or liver failure') is labelled on its first piece, the one-piece start the backend gives it. A lexicon learned on the
same documents would match them perfectly and the tagger would learn to trust it blindly, so each
document's features come from a lexicon learned without it (5 folds by trial, as in evals/chia_cv.py).
Each line (one criterion in Chia) is its own sequence, as the backend tags one criterion at a time.
Training is python-crfsuite's L-BFGS with fixed settings: the same input gives the same weights.
The weights are written as a TSV with the Chia attribution (CC BY 4.0) in its header; inference
(crf.py) is pure Python and needs no training package.
"""

from __future__ import annotations

import random
import re
import sys
import tempfile
from pathlib import Path

from pipeline.chia import DOMAIN_TYPES, ChiaDocument
from pipeline.extract.rules.build_lexicon import annotated_pairs, training_input
from pipeline.extract.rules.crf import LABELS, OUTSIDE, CrfModel
from pipeline.extract.rules.lexicon import Token, learn_lexicon
from pipeline.extract.rules.tagger import tagger_features

DEFAULT_OUTPUT = Path(__file__).with_name("tagger.tsv")
SETTINGS = {"c1": 0.1, "c2": 0.2, "max_iterations": 150, "feature.possible_transitions": True}
# c2 (L2) from 6 settings on evals/chia_cv.py's folds: 0.01 -> 0.2 raised relaxed F1 0.746 -> 0.751 on every fold
MIN_WEIGHT = 0.001  # smaller weights are dropped from the shipped file: they change no decision
ATTRIBUTION = """trialstruct rules-backend sequence tagger (linear-chain CRF weights), learned from the Chia corpus:
Kury F. et al. "Chia, a large annotated corpus of clinical trial eligibility criteria",
Scientific Data 7:281 (2020), doi:10.6084/m9.figshare.11855817. Licence: CC BY 4.0
(https://creativecommons.org/licenses/by/4.0/). Changes: the annotations of {trials} trials ({documents}
documents) were turned into BIO labels over tokens and a CRF was fitted to them (python-crfsuite,
{settings}); only its weights are kept.
Built by: python -m pipeline.extract.rules.train_tagger <chia-dir>
Columns: state<TAB>feature<TAB>label<TAB>weight | trans<TAB>from label<TAB>to label<TAB>weight."""


def gold_labels(tokens: list[Token], spans: list[tuple[int, int, str]]) -> list[str]:
    """BIO labels of the tokens lying wholly inside annotated spans; longer spans first, no overlaps."""
    labels = [OUTSIDE] * len(tokens)
    for start, end, typ in sorted(spans, key=lambda span: (span[0] - span[1], span[0])):
        inside = [i for i, token in enumerate(tokens) if start <= token[0] and token[1] <= end]
        if not inside or any(labels[i] != OUTSIDE for i in inside):
            continue
        labels[inside[0]] = "B-" + typ
        for i in inside[1:]:
            labels[i] = "I-" + typ
    return labels


LINE = re.compile(r"[^\r\n]+")


def criterion_lines(
    text: str, spans: list[tuple[int, int, str]]
) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """Each non-blank line of `text` with the spans inside it, offsets into the line."""
    lines = []
    for line in LINE.finditer(text):
        if line.group().strip():
            start, end = line.span()
            inside = [(s - start, e - start, typ) for s, e, typ in spans if start <= s and e <= end]
            lines.append((line.group(), inside))
    return lines


def tagged_pairs(docs: list[ChiaDocument]) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """(text, [(start, end, type)]) of every document's domain entities, a discontinuous one by its first piece."""
    return [
        (doc.text, [(*e.fragments[0], e.type) for e in doc.entities if e.type in DOMAIN_TYPES]) for doc in docs
    ]


def folds_by_trial(docs: list[ChiaDocument], k: int, seed: int) -> list[list[ChiaDocument]]:
    """Documents split into k folds, a trial's inclusion and exclusion texts in the same fold."""
    trials = sorted({d.nct_id for d in docs})
    random.Random(seed).shuffle(trials)
    fold_of = {trial: i % k for i, trial in enumerate(trials)}
    folds: list[list[ChiaDocument]] = [[] for _ in range(k)]
    for doc in docs:
        folds[fold_of[doc.nct_id]].append(doc)
    return folds


def training_sequences(
    docs: list[ChiaDocument], vocabulary: dict[str, str], folds: int = 5
) -> list[tuple[list[list[str]], list[str]]]:
    """(features, labels) per document, each document's lexicon features from a lexicon learned without it."""
    sequences = []
    parts = folds_by_trial(docs, folds, seed=7)
    for k, part in enumerate(parts):
        others = [doc for j, fold in enumerate(parts) if j != k for doc in fold]
        lexicon = learn_lexicon(annotated_pairs(others), vocabulary=vocabulary)
        for document, annotated in tagged_pairs(part):
            for text, spans in criterion_lines(document, annotated):
                tokens, features = tagger_features(text, lexicon)
                sequences.append((features, gold_labels(tokens, spans)))
    return sequences


def train(docs: list[ChiaDocument], vocabulary: dict[str, str]) -> CrfModel:
    """A tagger fitted to `docs` (needs python-crfsuite, the `train` extra)."""
    try:
        import pycrfsuite  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as exc:
        raise SystemExit('train_tagger needs python-crfsuite: pip install -e ".[train]"') from exc
    trainer = pycrfsuite.Trainer(verbose=False)
    for features, labels in training_sequences(docs, vocabulary):
        trainer.append(features, labels)
    trainer.set_params(SETTINGS)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.crfsuite"
        trainer.train(str(path))
        return model_of(path)


def model_of(path: Path) -> CrfModel:
    """The weights of a python-crfsuite model file, rounded, the negligible ones dropped."""
    import pycrfsuite  # type: ignore[import-untyped]

    tagger = pycrfsuite.Tagger()
    tagger.open(str(path))
    info = tagger.info()
    tagger.close()
    index = {label: i for i, label in enumerate(LABELS)}
    model = CrfModel()
    for (source, target), weight in info.transitions.items():
        model.transitions[index[source]][index[target]] = round(weight, 4)
    state: dict[str, list[tuple[int, float]]] = {}
    for (feature, label), weight in sorted(info.state_features.items()):
        if abs(weight) >= MIN_WEIGHT:
            state.setdefault(feature, []).append((index[label], round(weight, 4)))
    model.state = {feature: tuple(pairs) for feature, pairs in state.items()}
    return model


def main(argv: list[str] | None = None) -> int:
    given = training_input("train_tagger", __doc__.splitlines()[0], DEFAULT_OUTPUT, argv)
    model = train(given.docs, given.vocabulary)
    settings = ", ".join(f"{key}={value}" for key, value in SETTINGS.items())
    trials = len({d.nct_id for d in given.docs})
    model.save(given.output, ATTRIBUTION.format(trials=trials, documents=len(given.docs), settings=settings))
    print(f"wrote {given.output}: {len(model.state)} features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
