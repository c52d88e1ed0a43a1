"""Tokens and the learned lexicon of the rules backend.

The lexicon has two tables, both learned from annotated text (see `learn_lexicon`):
- `phrases`: token n-grams annotated as a domain entity, with their majority type and an estimated
  precision (how often the n-gram is annotated, over how often it occurs in the training text). A
  low-precision phrase ("study", "history") is dropped: this is what keeps a gazetteer from tagging
  every common word that was once annotated.
- `heads`: single tokens that sit *inside* entities of one type most of the time they occur
  ("carcinoma", "insulin"), used to find entities the phrase table has never seen ("renal cell
  carcinoma" in an unseen trial).
Lookup walks a word trie, one dict hit per word; no per-term regex scanning.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TOKEN = re.compile(r"[^\W_]+|\S")
MAX_N = 8

STOPWORDS = frozenset(
    """
    a an the of and or in on at to for with without by from as
    is are be been was were has have had any all other than who which that
    this these those their its his her patient patients subject subjects participant participants not no nor
    if must will may can should within prior before after during current currently previous previously history
    known use using used
    but eg ie etc vs either both each more less least only then upon above below over including include includes
    having being
    """.split()  # noqa: SIM905
)

SUFFIXES: list[tuple[str, str]] = [
    ("itis", "Condition"), ("oma", "Condition"), ("emia", "Condition"), ("aemia", "Condition"),
    ("osis", "Condition"), ("pathy", "Condition"), ("plasia", "Condition"), ("algia", "Condition"),
    ("ectomy", "Procedure"), ("otomy", "Procedure"), ("ostomy", "Procedure"), ("plasty", "Procedure"),
    ("scopy", "Procedure"), ("graphy", "Procedure"),
    ("mab", "Drug"), ("nib", "Drug"), ("mycin", "Drug"), ("cillin", "Drug"), ("floxacin", "Drug"),
    ("azole", "Drug"), ("pril", "Drug"), ("sartan", "Drug"), ("olol", "Drug"), ("statin", "Drug"),
    ("parin", "Drug"), ("dronate", "Drug"), ("platin", "Drug"), ("taxel", "Drug"), ("rubicin", "Drug"),
    ("azepam", "Drug"), ("prazole", "Drug"), ("gliptin", "Drug"), ("glitazone", "Drug"), ("vir", "Drug"),
    # WHO INN stems of drugs named since the corpus (2018): no word of HINT's criteria ends so but a drug
    ("imod", "Drug"), ("gliflozin", "Drug"), ("glutide", "Drug"), ("xaban", "Drug"), ("gatran", "Drug"),
    ("parib", "Drug"), ("ciclib", "Drug"), ("lisib", "Drug"), ("zomib", "Drug"), ("lutamide", "Drug"),
    ("olimus", "Drug"), ("ercept", "Drug"), ("grastim", "Drug"), ("poetin", "Drug"), ("kinra", "Drug"),
    ("tecan", "Drug"), ("mustine", "Drug"), ("citabine", "Drug"), ("trexate", "Drug"), ("coxib", "Drug"),
    ("setron", "Drug"), ("degib", "Drug"), ("sertib", "Drug"), ("apine", "Drug"), ("oxetine", "Drug"),
    ("dipine", "Drug"), ("peridol", "Drug"), ("lukast", "Drug"), ("sonide", "Drug"), ("tidine", "Drug"),
    ("codone", "Drug"), ("triptyline", "Drug"), ("ersen", "Drug"), ("leucel", "Drug"), ("plam", "Drug"),
]  # fmt: skip

_ENDINGS = tuple(suffix for suffix, _ in SUFFIXES)


def suffix_type(word: str) -> str | None:
    """Domain type suggested by a word's ending ('-itis' Condition), for words of 6+ letters."""
    if len(word) < 6 or not word.isalpha():
        return None
    if not word.endswith(_ENDINGS):
        return None
    return next((typ for suffix, typ in SUFFIXES if word.endswith(suffix)), None)


Token = tuple[int, int, str]  # (start, end, normalised word): plain tuples build 3x faster than a NamedTuple


def normalise(word: str) -> str:
    """Lower-case and strip a plural -s, so 'Tumors' and 'tumor' share an entry."""
    word = word.lower()
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def lower_ascii(text: str) -> str:
    """Lower-case A-Z only: same length as `text`, so offsets carry over (str.lower may not)."""
    return text.translate(_ASCII_LOWER)


def starts_word(low: str, start: int) -> bool:
    """No letter, digit, '_' or '.' right before `start` when the match itself starts with one.

    Some patterns are compiled without a leading boundary assertion because the regex engine then
    skips ahead by first character (measured 2x faster); this check restores the boundary.
    """
    return start == 0 or not low[start].isalnum() or not (low[start - 1].isalnum() or low[start - 1] in "._")


class Memo(dict):
    """A one-argument function as a mapping that remembers its answers (a dict hit is cheaper than a
    call in a per-token loop); emptied when `limit` answers are held, so a registry-sized vocabulary
    cannot grow it without end."""

    def __init__(self, function: Callable[[Any], Any], limit: int = 200_000) -> None:
        super().__init__()
        self.function = function
        self.limit = limit

    def __missing__(self, key: Any) -> Any:
        if len(self) >= self.limit:
            self.clear()
        answer = self[key] = self.function(key)
        return answer


_NORMALISED = Memo(normalise)
_SPACE_AND_TOKEN = re.compile(r"(\s*)(" + TOKEN.pattern + ")")  # TOKEN skips only white space


def tokenize(text: str) -> list[Token]:
    """(start, end, normalised word) of each TOKEN match.

    Offsets are summed from the lengths `findall` returns: no match object per token, 25% faster.
    """
    tokens, position, normalised = [], 0, _NORMALISED
    for space, word in _SPACE_AND_TOKEN.findall(text):
        start = position + len(space)
        position = start + len(word)
        tokens.append((start, position, normalised[word]))
    return tokens


@dataclass(slots=True)
class PreparedText:
    """One string made ready once for every finder: ASCII-lower-cased and tokenized.

    `shortcuts` lets finders skip patterns by the words present and try them only where one of their
    first words starts. That is exact for ASCII text, where every place a pattern may start (no letter
    or digit before it) starts a token; text with other letters is scanned whole ('éprior' is one
    token but the patterns find 'prior' in it).
    """

    text: str
    lowered: str
    tokens: list[Token]
    words: set[str]
    shortcuts: bool

    @classmethod
    def of(cls, text: str | PreparedText, *, shortcuts: bool = True) -> PreparedText:
        """`text` prepared; a PreparedText is returned as it is, so finders take either."""
        if isinstance(text, PreparedText):
            return text
        tokens = tokenize(text)
        words = {token[2] for token in tokens}
        return cls(text, lower_ascii(text), tokens, words, shortcuts and text.isascii())

    def starts_of(self, first_words: frozenset[str]) -> list[int]:
        """Offsets of the tokens that are one of `first_words` (normalised), in order."""
        return [start for start, _, word in self.tokens if word in first_words]


def word_set(words: str) -> frozenset[str]:
    """Space-separated words, normalised like tokens, for comparing with `PreparedText.words`."""
    return frozenset(normalise(word) for word in words.split())


def matches_at(pattern: re.Pattern, lowered: str, starts: list[int]) -> list[re.Match]:
    """What `pattern.finditer(lowered)` finds, when no match can start anywhere but `starts`."""
    found: list[re.Match] = []
    end = 0
    for start in starts:
        if start >= end and (match := pattern.match(lowered, start)) is not None:
            found.append(match)
            end = match.end()
    return found


def key_of(tokens: Iterable[Token]) -> str:
    return " ".join(t[2] for t in tokens)


TrieNode = list  # [type if a phrase ends here, {next word: TrieNode}]


@dataclass
class Lexicon:
    phrases: dict[str, tuple[str, float]] = field(default_factory=dict)
    heads: dict[str, tuple[str, float]] = field(default_factory=dict)
    plain: set[str] = field(default_factory=set)
    upper: set[str] = field(default_factory=set)  # abbreviations: a name in capitals ('MET'), a word in lower case
    max_n: int = MAX_N
    _trie: dict[str, TrieNode] | None = field(default=None, repr=False, compare=False)
    _word_types: Memo | None = field(default=None, repr=False, compare=False)

    def word_type(self, word: str) -> str | None:
        """Type of a lone word: from the head table, else from its suffix if training never saw it."""
        head = self.heads.get(word)
        return head[0] if head else None if word in self.plain else suffix_type(word)

    def word_types(self) -> dict[str, str | None]:
        """`word_type` as a mapping that remembers, for loops where a method call per word counts."""
        if self._word_types is None:
            self._word_types = Memo(self.word_type)
        return self._word_types

    def trie(self) -> dict[str, TrieNode]:
        """The phrase table as a word trie: first word -> [type or None, {next word -> node}]."""
        if self._trie is None:
            root: dict[str, TrieNode] = {}
            for key, (typ, _) in self.phrases.items():
                children: dict[str, TrieNode] = root
                node: TrieNode = [None, {}]
                for word in key.split(" "):
                    node = children.setdefault(word, [None, {}])
                    children = node[1]
                node[0] = typ
            self._trie = root
        return self._trie

    def save(self, path: Path, header: str) -> None:
        """Write a TSV `table<TAB>key<TAB>type<TAB>score` after '#' header lines (`plain`: seen, not an entity)."""
        lines = [f"# {line}" if line else "#" for line in header.splitlines()]
        for table, entries in (("phrase", self.phrases), ("head", self.heads)):
            lines += [f"{table}\t{key}\t{typ}\t{score:.3f}" for key, (typ, score) in sorted(entries.items())]
        lines += [f"plain\t{word}\t-\t0" for word in sorted(self.plain)]
        lines += [f"upper\t{word}\t-\t0" for word in sorted(self.upper)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Lexicon:
        lexicon = cls()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line or line.startswith("#"):
                continue
            parts = line.split("\t")
            if len(parts) != 4 or parts[0] not in ("phrase", "head", "plain", "upper"):
                raise ValueError(f"{path}:{number}: expected 'phrase|head|plain|upper<TAB>key<TAB>type<TAB>score'")
            if parts[0] in ("plain", "upper"):
                getattr(lexicon, parts[0]).add(parts[1])
                continue
            table = lexicon.phrases if parts[0] == "phrase" else lexicon.heads
            table[parts[1]] = (parts[2], float(parts[3]))
        return lexicon


def training_record_path(lexicon_path: Path) -> Path:
    """The list of texts a lexicon was learned from, beside it (`lexicon.tsv` -> `lexicon.training.tsv`)."""
    return lexicon_path.with_suffix(".training.tsv")


def text_digest(text: str) -> str:
    """First 16 hex digits of the SHA-256 of a text: enough to tell a training text from any other."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def save_training_record(path: Path, named_texts: Iterable[tuple[str, str]], header: str) -> None:
    """Write `name<TAB>digest` for every training text, so an evaluation can tell it is scoring seen data."""
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{name}\t{text_digest(text)}" for name, text in sorted(named_texts)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_training_digests(path: Path) -> frozenset[str]:
    """The digests of a training record (empty when the lexicon has none)."""
    if not path.is_file():
        return frozenset()
    rows = path.read_text(encoding="utf-8").splitlines()
    return frozenset(row.split("\t")[1] for row in rows if row and not row.startswith("#"))


ABBREVIATION_MAX = 4  # a phrase of at most 4 characters annotated only in capitals does not match in lower case


def _is_content(key: str) -> bool:
    words = key.split()
    return any(w not in STOPWORDS and not w.isdigit() and (len(w) > 1 or w.isalpha()) for w in words)


def _count_occurrences(texts: Iterable[str], keys: set[str], max_n: int) -> Counter:
    """How often each key occurs as a token n-gram anywhere in `texts`."""
    seen: Counter = Counter()
    for text in texts:
        norms = [t[2] for t in tokenize(text)]
        for i in range(len(norms)):
            for n in range(1, min(max_n, len(norms) - i) + 1):
                key = " ".join(norms[i : i + n])
                if key in keys:
                    seen[key] += 1
    return seen


def _inside_counts(annotated: Iterable[tuple[str, list[tuple[int, int, str]]]]) -> tuple[Counter, Counter, dict]:
    """Per token: occurrences, occurrences inside any entity, and inside counts by type."""
    total: Counter = Counter()
    inside: Counter = Counter()
    by_type: dict[str, Counter] = defaultdict(Counter)
    for text, spans in annotated:
        for start, end, norm in tokenize(text):
            total[norm] += 1
            types = {typ for s, e, typ in spans if s <= start and end <= e}
            if types:
                inside[norm] += 1
                for typ in types:
                    by_type[norm][typ] += 1
    return total, inside, by_type


def learn_lexicon(
    annotated: list[tuple[str, list[tuple[int, int, str]]]],
    *,
    min_precision: float = 0.3,
    min_head_share: float = 0.6,
    min_head_count: int = 3,
    learn_plain: bool = True,
    vocabulary: dict[str, str] | None = None,
) -> Lexicon:
    """Learn phrase and head tables from (text, [(start, end, type), ...]) pairs.

    With `min_precision=0` and `min_head_count` huge this is the naive longest-match gazetteer
    (every annotated phrase, majority type) used as the baseline in evals/chia_cv.py;
    `learn_plain=False` leaves the suffix rules free to fire on every word. `vocabulary` (key -> type,
    e.g. registry drug and condition names) adds phrases the annotations lack, unless the training text
    shows them mostly unannotated.
    """
    types: dict[str, Counter] = defaultdict(Counter)
    lower_case: set[str] = set()  # keys annotated at least once not written in capitals
    for text, spans in annotated:
        for start, end, typ in spans:
            key = key_of(tokenize(text[start:end]))
            if key and len(key.split()) <= MAX_N and _is_content(key):
                types[key][typ] += 1
                if not text[start:end].isupper():
                    lower_case.add(key)
    vocabulary = {k: t for k, t in (vocabulary or {}).items() if k not in types}
    occurrences = _count_occurrences((text for text, _ in annotated), set(types) | set(vocabulary), MAX_N)
    lexicon = Lexicon()
    for key, counts in types.items():
        typ = counts.most_common(1)[0][0]
        precision = sum(counts.values()) / max(occurrences[key], 1)
        if precision >= min_precision:
            lexicon.phrases[key] = (typ, min(precision, 1.0))
    for key, typ in vocabulary.items():
        if occurrences[key] < 3:
            lexicon.phrases[key] = (typ, 0.5)
    total, inside, by_type = _inside_counts(annotated)
    for word, count in inside.items():
        share = count / total[word]
        typ, typed = by_type[word].most_common(1)[0]
        if count >= min_head_count and share >= min_head_share and typed / count >= 0.8 and _is_content(word):
            lexicon.heads[word] = (typ, share)
    if learn_plain:
        lexicon.plain = {w for w in total if w not in lexicon.heads and suffix_type(w)}
    lexicon.upper = {k for k in lexicon.phrases if k in types and k not in lower_case and len(k) <= ABBREVIATION_MAX}
    return lexicon
