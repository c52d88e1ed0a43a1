"""The `rules` backend: deterministic, offline entity extraction (the default with no API key).

Each criterion's text is tagged by `tag_text` with the shipped lexicon and sequence tagger (both
learned from Chia, see build_lexicon.py, train_tagger.py and the headers of lexicon.tsv and tagger.tsv),
and the results are shifted to absolute offsets into `record.source_text`. Text that belongs to a
sub-criterion is tagged once, in the sub-criterion.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from threading import Lock
from typing import Any

from pipeline import __version__
from pipeline.config import RunConfig
from pipeline.extract import Extraction
from pipeline.extract.rules.crf import CrfModel, CrfTagger
from pipeline.extract.rules.lexicon import Lexicon, load_training_digests, text_digest, training_record_path
from pipeline.extract.rules.tagger import Tagged, tag_text, tag_texts
from pipeline.schema import Criterion, Evidence, Provenance, Trial, TrialRecord

LEXICON_PATH = Path(__file__).with_name("lexicon.tsv")
TAGGER_PATH = Path(__file__).with_name("tagger.tsv")
RULES_VERSION = "rules-7"  # bumped whenever the records change: a journal of older records is not resumed
REPEATS_KEPT = 4096  # criteria texts whose entities are remembered, least recently used dropped: registries
# repeat boilerplate ('Pregnant or breastfeeding women'): 8.5% of HINT's criteria are found here, for a few MB

__all__ = ["Backend", "Tagged", "load_default_lexicon", "load_default_tagger", "tag_text", "tag_texts"]


@lru_cache(maxsize=1)
def load_default_lexicon() -> Lexicon:
    """The shipped lexicon, read once per process."""
    return Lexicon.load(LEXICON_PATH)


@lru_cache(maxsize=1)
def load_default_model() -> CrfModel:
    """The shipped sequence tagger's weights, read once per process."""
    return CrfModel.load(TAGGER_PATH)


@lru_cache(maxsize=1)
def load_default_tagger() -> CrfTagger:
    """The shipped tagger bound to the shipped lexicon (the pair it was trained with)."""
    return CrfTagger(load_default_model(), load_default_lexicon().word_type)


@lru_cache(maxsize=1)
def _shipped_training_texts() -> frozenset[str]:
    return load_training_digests(training_record_path(LEXICON_PATH))


def _entity(tagged: Tagged, criterion: Criterion, number: int) -> dict[str, Any]:
    """The fields of an `Entity` for `tagged`, offsets moved into the record's source text.

    Plain dicts, validated once per criterion (see `Backend.extract`): a third cheaper than building
    the Entity, Value and Temporal models one by one.
    """
    shift = criterion.start
    value = temporal = None
    if tagged.value is not None:
        v = tagged.value
        value = {"text": v.text, "start": v.start + shift, "end": v.end + shift, "comparator": v.comparator,
                 "low": v.low, "high": v.high, "unit": v.unit}  # fmt: skip
    if tagged.temporal is not None:
        t = tagged.temporal
        temporal = {"text": t.text, "start": t.start + shift, "end": t.end + shift, "direction": t.direction,
                    "anchor": t.anchor, "min_days": t.min_days, "max_days": t.max_days}  # fmt: skip
    return {
        "id": f"{criterion.id}.e{number}",
        "type": tagged.type,
        "text": tagged.text,
        "start": tagged.start + shift,
        "end": tagged.end + shift,
        "negated": tagged.negated,
        "value": value,
        "temporal": temporal,
    }


def _child_spans(criteria: list[Criterion]) -> dict[str, list[tuple[int, int]]]:
    spans: dict[str, list[tuple[int, int]]] = {}
    for criterion in criteria:
        if criterion.parent is not None:
            spans.setdefault(criterion.parent, []).append((criterion.start, criterion.end))
    return spans


def _copy_trial(trial: Trial) -> Trial:
    """A deep copy of the metadata, 4x faster than `model_copy(deep=True)`: Evidence holds scalars."""

    def copy(evidence: Evidence) -> Evidence:
        return evidence.model_copy(deep=isinstance(evidence.value, list | dict))

    update = {}
    for name in Trial.model_fields:
        item = getattr(trial, name)
        if item is not None:
            update[name] = [copy(e) for e in item] if isinstance(item, list) else copy(item)
    return trial.model_copy(update=update)


class Backend:
    name = "rules"
    cpu_bound = True

    def __init__(
        self, config: RunConfig, lexicon: Lexicon | None = None, *, tagger: bool | CrfTagger | None = None
    ) -> None:
        """`lexicon`: another lexicon than the shipped one (the shipped tagger is then bound to it);
        `tagger=False`: lexicon and context rules alone, without the sequence tagger (default: the
        `rules_tagger` setting); a `CrfTagger`: that one (cross-validation tags with one learned per fold)."""
        self.config = config
        tagger = config.rules_tagger if tagger is None else tagger
        self.lexicon = lexicon or load_default_lexicon()
        self.tagger: CrfTagger | None = None
        if isinstance(tagger, CrfTagger):
            self.tagger = tagger
        elif tagger and lexicon is None:
            self.tagger = load_default_tagger()
        elif tagger:
            self.tagger = CrfTagger(load_default_model(), self.lexicon.word_type)
        self._remembered: OrderedDict[str, list[Tagged]] = OrderedDict()
        self._remembering = Lock()

    def provenance(self) -> Provenance:
        model = RULES_VERSION if self.tagger is None else f"{RULES_VERSION}+tagger"
        return Provenance(backend=self.name, model=model, pipeline_version=__version__)

    def trained_on(self, text: str) -> bool:
        """Whether `text` is one the shipped lexicon was learned from (scores on it are in-sample)."""
        return self.lexicon is load_default_lexicon() and text_digest(text) in _shipped_training_texts()

    def extract(self, record: TrialRecord) -> Extraction:
        """A copy of `record` sharing nothing mutable with it, every criterion's entities filled.

        Criteria hold only immutable fields besides `entities`, so fresh criteria plus a deep copy of
        the small metadata parts is a deep copy, at a third of the cost of `model_copy(deep=True)`.
        """
        children = _child_spans(record.criteria)
        tagged = self._tag_all([criterion.text for criterion in record.criteria])
        criteria = [
            Criterion(**{**criterion.__dict__, "entities": _entities(tagged[criterion.text], criterion, children)})
            for criterion in record.criteria
        ]
        copy = record.model_copy(
            update={
                "criteria": criteria,
                "trial": _copy_trial(record.trial),
                "warnings": list(record.warnings),
                "source": record.source.model_copy(),
                "annotation": record.annotation.model_copy() if record.annotation else None,
                "provenance": self.provenance(),
            }
        )
        return Extraction(record=copy)

    def _tag_all(self, texts: list[str]) -> dict[str, list[Tagged]]:
        """The entities of each text (offsets into it), tagged together (the sequence tagger decodes a
        document's criteria side by side) or remembered: the `REPEATS_KEPT` texts used last are kept."""
        with self._remembering:
            remembered = self._remembered
            found = {}
            for text in texts:
                if text in remembered:
                    remembered.move_to_end(text)
                    found[text] = remembered[text]
            missing = list(dict.fromkeys(text for text in texts if text not in found))
            for text, entities in zip(missing, tag_texts(missing, self.lexicon, self.tagger), strict=True):
                found[text] = remembered[text] = entities
            while len(remembered) > REPEATS_KEPT:
                remembered.popitem(last=False)
        return found


def _entities(found: list[Tagged], criterion: Criterion, children: dict[str, list[tuple[int, int]]]) -> list[dict]:
    """Entities of one criterion, leaving text that belongs to its sub-criteria to them. The tagging is
    remembered by text (offsets into the criterion, shifted to this record's by `_entity`; the Tagged
    results are only read)."""
    inner = children.get(criterion.id)
    if inner:
        found = [t for t in found if not any(s <= t.start + criterion.start < e for s, e in inner)]
    return [_entity(t, criterion, n) for n, t in enumerate(found, 1)]
