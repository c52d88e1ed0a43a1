"""A linear-chain CRF that finds entity names the lexicon never saw, from their shape and context.

Labels are BIO over the rules tokenizer's tokens (`B-Drug`, `I-Drug`, ..., `O`). A token's features
fall into slots, each depending on one thing only, so inference can sum cached weight vectors instead
of building feature strings per token:
- the token itself (`local_features`): its normalised word, shape, affixes, and the type the lexicon
  gives the lone word (head table or suffix rule);
- the words either side (`w-1=`, `w+1=`, `w-2=`, `w+2=`);
- the lexicon's phrase match at the token and either side (`L=B-Condition`, `L-1=`, `L+1=`).
The weights are learned by `train_tagger.py` (python-crfsuite, the `train` extra) and shipped as a TSV;
inference here is pure Python (exact Viterbi), deterministic, and needs no extra package.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from math import inf
from operator import add
from pathlib import Path

from pipeline.extract.rules.lexicon import Memo, Token, normalise
from pipeline.schema import EntityType

TYPES = tuple(t.value for t in EntityType)
LABELS = ("O", *(f"{prefix}-{typ}" for typ in TYPES for prefix in ("B", "I")))
OUTSIDE = "O"
OUTSIDE_INDEX = 0
INSIDE = [0] + [LABELS.index("I-" + label[2:]) for label in LABELS[1:]]  # label index -> its I- label's index
EDGE = "<s>"
_SHAPE_RUNS = re.compile(r"(X)X+|(x)x+|(d)d+")


def word_shape(raw: str) -> str:
    """'Tumor' -> 'Xx', 'HbA1c' -> 'XxXdx', 'CD4+' -> 'Xd+': letter case and digit runs, collapsed."""
    shape = "".join("X" if c.isupper() else "x" if c.isalpha() else "d" if c.isdigit() else c for c in raw)
    return _SHAPE_RUNS.sub(lambda m: m.group(1) or m.group(2) or m.group(3), shape)


def local_features(raw: str, word_type: Callable[[str], str | None]) -> list[str]:
    """Features of the token alone: its normalised word, shape, affixes, the lexicon's type for the lone word."""
    norm = normalise(raw)
    features = ["bias", "w=" + norm, "s=" + word_shape(raw), "p3=" + norm[:3], "p4=" + norm[:4], "x2=" + norm[-2:],
                "x3=" + norm[-3:], "x4=" + norm[-4:]]  # fmt: skip
    typ = word_type(norm)
    if typ is not None:
        features.append("h=" + typ)
    if len(raw) > 1 and raw.isupper():
        features.append("upper")
    if len(norm) <= 2:
        features.append("short")
    return features


CONTEXT = (("w-2=", -2), ("w-1=", -1), ("w+1=", 1), ("w+2=", 2))
COLUMNS = ("L", "R", "V", "T")  # lexicon phrase, rules span (BIO labels), inside a value, inside a time window


def column_features(key: tuple[str, ...]) -> list[str]:
    """Features of the column labels around a token: `key` holds, column by column, (before, at, after)."""
    features = []
    for n, name in enumerate(COLUMNS):
        before, at, after = key[3 * n : 3 * n + 3]
        features += [f"{name}={at}", f"{name}-1={before}", f"{name}+1={after}"]
    return features


def bio_labels(count: int, spans: list[tuple[int, int, str]]) -> list[str]:
    """The BIO label of each of `count` tokens under non-overlapping token spans (`O` outside them)."""
    labels = [OUTSIDE] * count
    for a, b, typ in spans:
        labels[a] = "B-" + typ
        labels[a + 1 : b] = ["I-" + typ] * (b - a - 1)
    return labels


def _padded(words: list[str], pad: int) -> list[str]:
    return [EDGE] * pad + words + [EDGE] * pad


def _column_keys(columns: dict[str, list[str]], count: int) -> list[tuple[str, ...]]:
    padded = [_padded(columns[name], 1) for name in COLUMNS]
    return [tuple(label for column in padded for label in column[i : i + 3]) for i in range(count)]


def sequence_features(
    text: str, tokens: list[Token], columns: dict[str, list[str]], word_type: Callable[[str], str | None]
) -> list[list[str]]:
    """Every token's feature strings (what training sees): its own (`local_features`), the words around it,
    the word pairs it forms with its neighbours, and the column labels at it and either side.
    `CrfTagger.emissions` sums the same features' weights slot by slot, from caches."""
    words = _padded([t[2] for t in tokens], 2)
    keys = _column_keys(columns, len(tokens))
    out = []
    for i, (start, end, norm) in enumerate(tokens):
        features = local_features(text[start:end], word_type)
        features += [name + words[i + 2 + offset] for name, offset in CONTEXT]
        features += ["b-=" + words[i + 1] + "|" + norm, "b+=" + norm + "|" + words[i + 3]]
        features += column_features(keys[i])
        out.append(features)
    return out


def spans_of(labels: list[str]) -> list[tuple[int, int, str]]:
    """(first token, last token + 1, type) of each B/I run; an I- without its B- starts a span."""
    spans: list[tuple[int, int, str]] = []
    current: list | None = None
    for i, label in enumerate(labels):
        if label == OUTSIDE:
            current = None
            continue
        prefix, typ = label.split("-", 1)
        if prefix == "I" and current is not None and current[2] == typ:
            current[1] = i + 1
            continue
        current = [i, i + 1, typ]
        spans.append(current)  # type: ignore[arg-type]
    return [(a, b, typ) for a, b, typ in spans]


Vector = tuple[tuple[int, float], ...]  # sparse: (label index, weight)
Row = list[float]  # a score per label, in the order of LABELS
BEAM = 10.0  # labels scoring further below a token's best are not searched: on 78k HINT tokens 6 labels differ
# from the full search (0 at 14.0, 735 at 6.0), at 3/4 of its time


@dataclass
class CrfModel:
    """State weights by feature string, transition weights by label pair; Viterbi decoding."""

    state: dict[str, Vector] = field(default_factory=dict)
    transitions: list[list[float]] = field(default_factory=lambda: [[0.0] * len(LABELS) for _ in LABELS])

    @classmethod
    def load(cls, path: Path) -> CrfModel:
        index = {label: i for i, label in enumerate(LABELS)}
        state: dict[str, list[tuple[int, float]]] = {}
        model = cls()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 4 or parts[0] not in ("state", "trans"):
                raise ValueError(f"{path}:{number}: expected 'state|trans<TAB>a<TAB>b<TAB>weight'")
            if parts[0] == "trans":
                model.transitions[index[parts[1]]][index[parts[2]]] = float(parts[3])
            else:
                state.setdefault(parts[1], []).append((index[parts[2]], float(parts[3])))
        model.state = {feature: tuple(pairs) for feature, pairs in state.items()}
        return model

    def save(self, path: Path, header: str) -> None:
        lines = [f"# {line}" if line else "#" for line in header.splitlines()]
        for source, row in zip(LABELS, self.transitions, strict=True):
            cells = zip(LABELS, row, strict=True)
            lines += [f"trans\t{source}\t{target}\t{weight}" for target, weight in cells if weight]
        for feature, pairs in sorted(self.state.items()):
            lines += [f"state\t{feature}\t{LABELS[label]}\t{weight}" for label, weight in pairs]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def emissions(self, features: list[list[str]]) -> list[list[float]]:
        """Each token's score for each label: the sum of its features' weights."""
        rows = []
        width = len(LABELS)
        for token_features in features:
            row = [0.0] * width
            for feature in token_features:
                for label, weight in self.state.get(feature, ()):
                    row[label] += weight
            rows.append(row)
        return rows

    def row(self, features: list[str]) -> Row | None:
        """The summed weights of `features` per label; None when all are zero (most context words)."""
        row = [0.0] * len(LABELS)
        for feature in features:
            for label, weight in self.state.get(feature, ()):
                row[label] += weight
        return row if any(row) else None

    def labels(self, features: list[list[str]]) -> list[str]:
        """The best labels for tokens given as feature strings (slow; the form training uses)."""
        zero = [0.0] * len(LABELS)
        return [LABELS[y] for y in viterbi([self.row(f) or zero for f in features], self.transitions)]


def viterbi(rows: list[Row], transitions: list[list[float]], beam: float = BEAM) -> list[int]:
    """The best label sequence for per-token scores `rows` among labels scoring within `beam` of each
    token's best, and the continuations (I-) of the names open at the token before; ties go to the lower
    label index. Most tokens keep one label ('O'), so this costs a few operations a token where the full
    search costs 17 x 17."""
    if not rows:
        return []
    labels: list[int] = []
    scores: list[float] = []
    back: list[tuple[list[int], list[int]]] = []
    outside_only = [OUTSIDE_INDEX]
    for row in rows:
        floor = max(row) - beam
        candidates = [y for y, s in enumerate(row) if s >= floor]
        for p in labels:
            if p and INSIDE[p] not in candidates:
                candidates.append(INSIDE[p])
        if not labels:
            labels, scores = candidates, [row[y] for y in candidates]
            continue
        if candidates == outside_only and labels == outside_only:  # most tokens: nothing to choose
            scores = [scores[0] + transitions[0][0] + row[0]]
            back.append((labels, [0]))
            continue
        new_scores, pointers = [], []
        for y in candidates:
            best, arg = -inf, 0
            for k, (p, s) in enumerate(zip(labels, scores, strict=True)):
                value = s + transitions[p][y]
                if value > best or (value == best and p < labels[arg]):
                    best, arg = value, k
            new_scores.append(best + row[y])
            pointers.append(arg)
        back.append((labels, pointers))
        labels, scores = candidates, new_scores
    k = max(range(len(scores)), key=lambda j: (scores[j], -labels[j]))
    path = [labels[k]]
    for previous, pointers in reversed(back):
        k = pointers[k]
        path.append(previous[k])
    return path[::-1]


def _prefixed_rows(model: CrfModel, prefix: str) -> Memo:
    """Rows of the one feature `prefix + word`, by word."""
    return Memo(lambda word: model.row([prefix + word]))


class CrfTagger:
    """A CrfModel bound to one lexicon's word types, summing cached weight rows slot by slot (the same
    features as `sequence_features`, without building a string per feature)."""

    def __init__(self, model: CrfModel, word_type: Callable[[str], str | None]) -> None:
        self.model = model
        self._own = Memo(lambda key: model.row(local_features(key[0], word_type) + column_features(key[1])))
        self._context = [_prefixed_rows(model, name) for name, _ in CONTEXT]
        self._pairs = Memo(lambda pair: model.row([pair]))

    def emissions(self, text: str, tokens: list[Token], columns: dict[str, list[str]]) -> list[Row]:
        """Each token's score per label: the weights of `sequence_features`, summed from cached rows (the
        token with its column labels, each neighbour word, each word pair)."""
        words = _padded([t[2] for t in tokens], 2)
        keys = _column_keys(columns, len(tokens))
        own, pairs = self._own, self._pairs
        far_left, left, right, far_right = self._context
        zero = [0.0] * len(LABELS)
        rows = []
        for i, (start, end, norm) in enumerate(tokens):
            row = own[(text[start:end], keys[i])] or zero
            before, after = words[i + 1], words[i + 3]
            for part in (far_left[words[i]], left[before], right[after], far_right[words[i + 4]],
                         pairs["b-=" + before + "|" + norm], pairs["b+=" + norm + "|" + after]):  # fmt: skip
                if part is not None:
                    row = list(map(add, row, part))
            rows.append(row)
        return rows

    def spans(self, text: str, tokens: list[Token], columns: dict[str, list[str]]) -> list[tuple[int, int, str]]:
        """(first token, last token + 1, type) of the names the tagger finds."""
        path = viterbi(self.emissions(text, tokens, columns), self.model.transitions)
        return spans_of([LABELS[y] for y in path])
