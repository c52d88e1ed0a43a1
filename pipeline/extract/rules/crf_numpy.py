"""The sequence tagger's arithmetic over arrays (numpy, the `fast` extra): the same sums and the same search
as crf.py's pure-Python `CrfTagger.emissions` and `Decoder`, giving the same labels, faster (extraction as a
whole: `python benchmarks/bench_rules.py` times the tagger with and without numpy in one run).

Python pays per token and per label; numpy pays per call. So emissions are one gather-and-add per slot
over all the criteria of a document, and the Viterbi search steps through the criteria of a document side by side:
one array step per token position for all of them, instead of one Python step per token and label.
Every score is the same float sum, added in the same order, as the pure-Python code computes (adding a
zero row changes no float), and every argmax takes the first, lowest label on ties, as `Decoder` does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Ids = Sequence[tuple[int, ...]]  # per token, the row id of each feature slot (0: no weights)


class RowArray:
    """A growing list of weight rows (each a list of floats per label) mirrored as one 2-D array."""

    def __init__(self, width: int) -> None:
        self.array = np.zeros((1024, width))
        self.filled = 0

    def forget(self) -> None:
        """The list was emptied: copy it afresh at the next `sync`."""
        self.filled = 0

    def sync(self, rows: Sequence[Sequence[float]]) -> np.ndarray:
        """The array holding `rows` (append-only: only rows added since the last call are copied)."""
        if len(rows) > len(self.array):
            grown = np.zeros((max(len(rows), 2 * len(self.array)), self.array.shape[1]))
            grown[: self.filled] = self.array[: self.filled]
            self.array = grown
        if len(rows) > self.filled:
            self.array[self.filled : len(rows)] = rows[self.filled :]
            self.filled = len(rows)
        return self.array


def emissions(table: np.ndarray, ids: Ids) -> np.ndarray:
    """Each token's score per label: its slots' rows added slot by slot, left to right."""
    if not ids:
        return np.zeros((0, table.shape[1]))
    index = np.asarray(ids, dtype=np.intp)
    scores = table[index[:, 0]]
    for slot in range(1, index.shape[1]):
        scores = scores + table[index[:, slot]]
    return scores


class BatchDecoder:
    """`crf.Decoder`'s search (the same lattice: labels within `beam` of a token's best, plus continuations
    of the names open before it) over many sequences at once."""

    def __init__(self, transitions: list[list[float]], inside: list[bool], begins: list[int], beam: float) -> None:
        self.transitions = np.array(transitions)
        self.into = np.ascontiguousarray(self.transitions.T)  # into[y, x]: the transition from x into y
        self.beam = beam
        # continues[x, y]: label y is an I- label and x is its B- or itself (a name open at x goes on in y)
        self.continues = np.zeros((len(inside), len(inside)), dtype=bool)
        for y, is_inside in enumerate(inside):
            if is_inside:
                self.continues[[begins[y], y], y] = True

    def decode_many(self, sequences: Sequence[np.ndarray]) -> list[list[int]]:
        """The best label index per token of each sequence (an array of scores, tokens x labels)."""
        order = sorted((i for i in range(len(sequences)) if len(sequences[i])), key=lambda i: -len(sequences[i]))
        paths: list[list[int]] = [[] for _ in sequences]
        if not order:
            return paths
        lengths = [len(sequences[i]) for i in order]
        rows = np.full((lengths[0], len(order), self.transitions.shape[0]), -np.inf)
        for column, i in enumerate(order):
            rows[: lengths[column], column] = sequences[i]
        descending = -np.array(lengths)
        active = np.searchsorted(descending, -np.arange(lengths[0]), side="left").tolist()  # sequences longer than t
        in_beam = rows >= (rows.max(axis=2) - self.beam)[:, :, None]
        scores = np.where(in_beam[0], rows[0], -np.inf)
        back = self._forward(rows, in_beam, active, scores)
        for i, path in zip(order, self._backtrack(back, active, scores).T, strict=True):
            paths[i] = path[: len(sequences[i])].tolist()
        return paths

    def _forward(self, rows: np.ndarray, in_beam: np.ndarray, active: list[int], scores: np.ndarray) -> np.ndarray:
        """Steps `scores` (each sequence's first token's) on to each sequence's last token; returns the best
        way into each label at each step. A label is searched when it is within the beam of its token's best
        (`in_beam`) or continues a name whose B- or I- was searched at the token before."""
        back = np.zeros(rows.shape, dtype=np.intp)
        searched = in_beam[0].copy()
        sequence, label = np.arange(rows.shape[1])[:, None], np.arange(rows.shape[2])[None, :]
        for t in range(1, rows.shape[0]):
            k = active[t]
            ways_in = scores[:k, None, :] + self.into  # [sequence, label, label before]: argmax on the last axis
            best = back[t, :k] = ways_in.argmax(axis=2)
            keep = in_beam[t, :k] | (searched[:k] @ self.continues)
            scores[:k] = np.where(keep, ways_in[sequence[:k], label, best] + rows[t, :k], -np.inf)
            searched[:k] = keep
        return back

    @staticmethod
    def _backtrack(back: np.ndarray, active: list[int], scores: np.ndarray) -> np.ndarray:
        """Label per position and sequence, following the best ways in back from each sequence's best end."""
        labels = scores.argmax(axis=1)
        path = np.zeros(back.shape[:2], dtype=np.intp)
        for t in range(back.shape[0] - 1, 0, -1):
            k = active[t]
            path[t, :k] = labels[:k]
            labels[:k] = back[t, np.arange(k), labels[:k]]
        path[0] = labels
        return path
