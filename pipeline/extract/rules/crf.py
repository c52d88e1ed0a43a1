"""A linear-chain CRF that finds entity names the lexicon never saw, from their shape and context.

Labels are BIO over the rules tokenizer's tokens (`B-Drug`, `I-Drug`, ..., `O`). A token's features
fall into slots, each depending on one thing only, so inference can sum cached weight vectors instead
of building feature strings per token:
- the token itself (`local_features`): its normalised word, shape, affixes, and the type the lexicon
  gives the lone word (head table or suffix rule);
- the words either side (`w-1=`, `w+1=`, `w-2=`, `w+2=`);
- the lexicon's phrase match at the token and either side (`L=B-Condition`, `L-1=`, `L+1=`).
The weights are learned by `train_tagger.py` (python-crfsuite, the `train` extra) and shipped as a TSV;
inference here is pure Python (a beam-pruned Viterbi search, exact within its beam: `Decoder`), deterministic,
and needs no extra package.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import accumulate, pairwise, repeat
from math import inf
from operator import add, itemgetter
from pathlib import Path
from threading import RLock
from typing import Any

from pipeline.extract.rules.lexicon import Memo, Token, normalise
from pipeline.schema import EntityType

try:
    from pipeline.extract.rules import crf_numpy
except ImportError:  # numpy is the `fast` extra; without it the same sums run in pure Python
    crf_numpy = None  # type: ignore[assignment]

TYPES = tuple(t.value for t in EntityType)
LABELS = ("O", *(f"{prefix}-{typ}" for typ in TYPES for prefix in ("B", "I")))
OUTSIDE = "O"
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


def _column_keys(columns: dict[str, list[str]]) -> list[tuple[str, ...]]:
    """Per token, column by column: the label before it, at it and after it (what `column_features` reads)."""
    shifted = []
    for name in COLUMNS:
        padded = _padded(columns[name], 1)
        shifted += [padded, padded[1:], padded[2:]]
    return list(zip(*shifted, strict=False))  # the shifted copies are 2, 1 and 0 labels longer


def sequence_features(
    text: str, tokens: list[Token], columns: dict[str, list[str]], word_type: Callable[[str], str | None]
) -> list[list[str]]:
    """Every token's feature strings (what training sees): its own (`local_features`), the words around it,
    the word pairs it forms with its neighbours, and the column labels at it and either side.
    `CrfTagger.emissions` sums the same features' weights slot by slot, from caches."""
    words = _padded([t[2] for t in tokens], 2)
    keys = _column_keys(columns)
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
# from the full search (0 at 14.0, 735 at 6.0); with Decoder's bounds the full search takes about as long


@dataclass
class CrfModel:
    """State weights by feature string, transition weights by label pair (decoding: `Decoder`, `CrfTagger`)."""

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

    def row(self, features: list[str]) -> Row | None:
        """The summed weights of `features` per label; None when all are zero (most context words)."""
        row = [0.0] * len(LABELS)
        for feature in features:
            for label, weight in self.state.get(feature, ()):
                row[label] += weight
        return row if any(row) else None


class Decoder:
    """Viterbi decoding over the beam-pruned lattice of one transition matrix: for each token, the labels
    scoring within `beam` of its best, and the continuations (I-) of the names open at the token before;
    the best label sequence among those, ties going to the lower label index. (Most tokens keep 9 to 17
    labels: the beam mostly guards against the rare far-off label.)

    The search is exact and fast because most of it is a bound, not a comparison. Scores are kept as one
    list over all labels (minus infinity outside the lattice), so whole steps run as C-level `map`s. The
    best way into a label y comes from few places: the best-scoring label before, or for I-X its own B-X
    and I-X (transitions from anywhere else into I-X are strongly negative). Those are scored first; every
    other way in scores at most `second best score + the largest transition into y from elsewhere`, and
    only when that bound is not strictly below does the token compare all 17 ways in. Floating-point
    addition is monotonic, so the bound never misses a better path; every score is the same sum, in the
    same order, as a plain search computes. The argmax (the path) is recovered afterwards along the best
    label only."""

    def __init__(self, transitions: list[list[float]], beam: float = BEAM) -> None:
        n = len(LABELS)
        self.transitions = transitions
        self.beam = beam
        self.into = [[transitions[p][y] for p in range(n)] for y in range(n)]  # by target: every way in
        inside = [label.startswith("I-") for label in LABELS]
        begins = [LABELS.index("B-" + label[2:]) if i else 0 for label, i in zip(LABELS, inside, strict=True)]
        self.begin_of = itemgetter(*begins)  # a score list -> the score of each label's B- (I- labels only)
        self.inside_of = itemgetter(*(y if i else 0 for y, i in enumerate(inside)))
        self.from_begin = [transitions[b][y] if i else -inf for y, b, i in zip(range(n), begins, inside, strict=True)]
        self.from_inside = [transitions[y][y] if i else -inf for y, i in enumerate(inside)]
        self.from_elsewhere = [
            max(transitions[p][y] for p in range(n) if not (i and p in (begins[y], y))) for y, i in enumerate(inside)
        ]
        self.inside = inside
        self.begins = begins

    def batched(self) -> crf_numpy.BatchDecoder | None:
        """This search over many sequences at once, as arrays (None without numpy)."""
        if crf_numpy is None:
            return None
        return crf_numpy.BatchDecoder(self.transitions, self.inside, self.begins, self.beam)

    def decode(self, rows: list[Row]) -> list[int]:
        """The best label index for each token given its per-label scores `rows`."""
        if not rows:
            return []
        beam, history = self.beam, []
        floor = max(rows[0]) - beam
        scores = [s if s >= floor else -inf for s in rows[0]]
        for row in rows[1:]:
            history.append(scores)
            scores = self._step(scores, row, max(row) - beam)
        return self._backtrack(history, scores)

    def _step(self, previous: list[float], row: Row, floor: float) -> list[float]:
        """The best score of a path ending in each label of this token (-inf outside the lattice)."""
        top = max(previous)
        best = previous.index(top)
        others = previous[:]
        others[best] = nothing = -inf
        second = max(others)
        begins, insides = self.begin_of(previous), self.inside_of(previous)
        from_begin = map(add, begins, self.from_begin)
        from_inside = map(add, insides, self.from_inside)
        candidates = map(max, map(add, repeat(top), self.transitions[best]), from_begin, from_inside)
        bounds = map(add, repeat(second), self.from_elsewhere)
        scores = []
        for y, (way_in, bound, score, is_inside, b, i) in enumerate(
            zip(candidates, bounds, row, self.inside, begins, insides, strict=True)
        ):
            if score >= floor or (is_inside and (b > nothing or i > nothing)):
                if bound >= way_in:
                    way_in = max(map(add, previous, self.into[y]))
                scores.append(way_in + score)
            else:
                scores.append(nothing)
        return scores

    def _backtrack(self, history: list[list[float]], scores: list[float]) -> list[int]:
        label = scores.index(max(scores))
        path = [label]
        for previous in reversed(history):
            ways_in = list(map(add, previous, self.into[label]))
            label = ways_in.index(max(ways_in))
            path.append(label)
        return path[::-1]


def viterbi(rows: list[Row], transitions: list[list[float]], beam: float = BEAM) -> list[int]:
    """`Decoder(transitions, beam).decode(rows)`, for one-off use (a tagger keeps its Decoder)."""
    return Decoder(transitions, beam).decode(rows)


ROWS_KEPT = 300_000  # weight rows remembered by a tagger (about 0.6 KB each; HINT needs 93k) before it starts afresh

TaggerInput = tuple[str, list[Token], dict[str, list[str]]]  # a text, its tokens, their column labels


class CrfTagger:
    """A CrfModel bound to one lexicon's word types. The features of `sequence_features` fall into seven
    slots per token (the token with its column labels, each neighbour word, each word pair); the summed
    weights of each slot's features are remembered by what the slot depends on (the token and its column
    labels, a word, a pair of words) as a numbered row, so a token costs three dict hits. With numpy (the
    `fast` extra) rows are added and decoded as arrays (crf_numpy.py), else in pure Python; the labels are
    the same."""

    def __init__(self, model: CrfModel, word_type: Callable[[str], str | None], *, arrays: bool = True) -> None:
        """`arrays=False`: pure Python even when numpy is installed (to compare the two)."""
        self.model = model
        self.rows: list[Row] = []
        self._lock = RLock()  # rows are numbered as they are learned: one thread at a time
        self._own = Memo(lambda key: self._numbered(local_features(key[0], word_type) + column_features(key[1])))
        self._as_neighbour = Memo(lambda word: tuple(self._numbered([name + word]) for name, _ in CONTEXT))
        self._as_pair = Memo(lambda pair: tuple(self._numbered([name + "|".join(pair)]) for name in ("b-=", "b+=")))
        self._decoder = Decoder(model.transitions)
        with_arrays = arrays and crf_numpy is not None
        self._arrays = crf_numpy.RowArray(len(LABELS)) if with_arrays else None
        self._batch_decoder = self._decoder.batched() if with_arrays else None

    def _numbered(self, features: list[str]) -> int:
        """The number of the summed weights of `features` (0: all zero, the row most context words get)."""
        if not self.rows:
            self.rows.append([0.0] * len(LABELS))
        row = self.model.row(features)
        if row is None:
            return 0
        self.rows.append(row)
        return len(self.rows) - 1

    def row_ids(self, text: str, tokens: list[Token], columns: dict[str, list[str]]) -> list[tuple[int, ...]]:
        """Per token, the row number of each slot, in the order training lists the features."""
        with self._lock:
            return self._row_ids(text, tokens, columns)

    def _row_ids(self, text: str, tokens: list[Token], columns: dict[str, list[str]]) -> list[tuple[int, ...]]:
        """Each word's rows as a neighbour (at -2, -1, +1, +2) and each adjacent pair's (the pair before
        its second word, after its first) are looked up once, then picked per token."""
        words = _padded([t[2] for t in tokens], 2)
        own = self._own
        neighbours = [self._as_neighbour[word] for word in words]
        pairs = [self._as_pair[pair] for pair in pairwise(words[1:-1])]
        return [
            (own[(text[start:end], key)], far_left[0], left[1], right[2], far_right[3], before[0], after[1])
            for (start, end, _), key, far_left, left, right, far_right, before, after in zip(
                tokens, _column_keys(columns), neighbours, neighbours[1:], neighbours[3:], neighbours[4:], pairs,
                pairs[1:], strict=False,
            )
        ]

    def emissions(self, text: str, tokens: list[Token], columns: dict[str, list[str]]) -> list[Row]:
        """Each token's score per label: the weights of `sequence_features`, summed slot by slot."""
        with self._lock:
            return self._emissions(text, tokens, columns)

    def _emissions(self, text: str, tokens: list[Token], columns: dict[str, list[str]]) -> list[Row]:
        rows, zero = self.rows, [0.0] * len(LABELS)
        summed_rows = []
        for ids in self._row_ids(text, tokens, columns):
            summed: Iterable[float] = zero
            for part in ids:
                if part:
                    summed = rows[part] if summed is zero else map(add, summed, rows[part])
            summed_rows.append(summed if isinstance(summed, list) else list(summed))
        return summed_rows

    def spans(self, text: str, tokens: list[Token], columns: dict[str, list[str]]) -> list[tuple[int, int, str]]:
        """(first token, last token + 1, type) of the names the tagger finds."""
        return self.spans_many([(text, tokens, columns)])[0]

    def spans_many(self, inputs: list[TaggerInput]) -> list[list[tuple[int, int, str]]]:
        """`spans` of each input, decoded side by side (a document's criteria: faster with numpy)."""
        with self._lock:
            if len(self.rows) >= ROWS_KEPT:
                self._forget()
            if self._batch_decoder is None:
                rows = [self._emissions(*item) for item in inputs]
            else:
                arrays = self._array_emissions(inputs)
        if self._batch_decoder is None:
            paths = [self._decoder.decode(scores) for scores in rows]
        else:  # outside the lock: decoding learns nothing
            paths = self._batch_decoder.decode_many(arrays)
        return [spans_of([LABELS[y] for y in path]) for path in paths]

    def _array_emissions(self, inputs: list[TaggerInput]) -> list[Any]:
        """`emissions` of each input as an array (tokens x labels), summed for all inputs at once."""
        assert crf_numpy is not None and self._arrays is not None
        ids = [self._row_ids(*item) for item in inputs]
        table = self._arrays.sync(self.rows or [[0.0] * len(LABELS)])
        scores = crf_numpy.emissions(table, [slots for token_ids in ids for slots in token_ids])
        ends = accumulate(map(len, ids))
        return [scores[end - len(token_ids) : end] for token_ids, end in zip(ids, ends, strict=True)]

    def _forget(self) -> None:
        """Start afresh (between batches, so no row number in use goes stale): a registry-sized vocabulary
        cannot grow the rows without end."""
        self.rows.clear()
        if self._arrays is not None:
            self._arrays.forget()
        for memo in (self._own, self._as_neighbour, self._as_pair):
            memo.clear()
