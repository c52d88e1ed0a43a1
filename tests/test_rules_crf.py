"""The rules backend's sequence tagger (crf.py): pure-Python inference from the shipped weights."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

try:
    import numpy
except ImportError:  # the `fast` extra; the batched search is then not there to test
    numpy = None  # type: ignore[assignment]

from pipeline.extract.rules import TAGGER_PATH, load_default_lexicon, load_default_model, load_default_tagger, tag_text
from pipeline.extract.rules.crf import BEAM, LABELS, CrfModel, Decoder, sequence_features, viterbi
from pipeline.extract.rules.lexicon import PreparedText
from pipeline.extract.rules.tagger import _head_matches, _phrase_matches, _tagger_columns
from pipeline.extract.rules.temporal import find_temporals
from pipeline.extract.rules.values import find_values
from tests.conftest import SEEDS, shared_path

TEXTS = [
    "Eastern Cooperative Oncology Group (ECOG) performance status of 0-2",
    "Use of any investigational drug within 30 days prior to study screening",
    "Known hypersensitivity to Lorbrena or any of its excipients",
    "Hemoglobin < 9 g/dL; ANC >= 1.5 x 10^9/L; no history of stroke",
    "",
]


def _columns(text: str) -> tuple[list, dict[str, list[str]]]:
    prepared = PreparedText.of(text)
    lexicon = load_default_lexicon()
    phrases = _phrase_matches(prepared.text, prepared.tokens, lexicon)
    candidates = _head_matches(prepared.tokens, phrases, lexicon)
    columns = _tagger_columns(prepared.tokens, phrases, candidates, find_values(prepared), find_temporals(prepared))
    return prepared.tokens, columns


def _seed_lines() -> list[str]:
    return [line.strip() for path in sorted(SEEDS.iterdir()) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("text", [*TEXTS, *_seed_lines()[:60]])
def test_cached_slot_sums_equal_the_training_features(text: str) -> None:
    """Inference sums cached rows by slot; training sees feature strings: the scores must be the same."""
    tokens, columns = _columns(text)
    model, tagger = load_default_model(), load_default_tagger()
    zero = [0.0] * len(LABELS)
    features = sequence_features(text, tokens, columns, load_default_lexicon().word_type)
    expected = [model.row(f) or zero for f in features]
    got = tagger.emissions(text, tokens, columns)
    assert len(got) == len(expected)
    for row, want in zip(got, expected, strict=True):
        assert row == pytest.approx(want, abs=1e-9)


def test_viterbi_finds_the_best_path_of_an_exhaustive_search() -> None:
    rng = random.Random(5)
    n = len(LABELS)
    transitions = [[rng.uniform(-3, 3) for _ in range(n)] for _ in range(n)]
    for _ in range(100):
        rows = [[rng.uniform(-5, 5) for _ in range(n)] for _ in range(rng.randint(1, 3))]

        def score(path: tuple[int, ...], rows: list[list[float]] = rows) -> float:
            return sum(r[y] for r, y in zip(rows, path, strict=True)) + sum(
                transitions[a][b] for a, b in itertools.pairwise(path)
            )

        best = max(itertools.product(range(n), repeat=len(rows)), key=score)
        assert viterbi(rows, transitions, beam=1e9) == list(best)


def _plain_beam_search(rows: list[list[float]], transitions: list[list[float]], beam: float) -> list[int]:
    """What `Decoder` finds, searched plainly: at each token the labels within `beam` of its best plus the
    I- continuations of the labels kept before, every way into each compared; ties to the lower label."""
    continuation = [0] + [LABELS.index("I-" + label[2:]) for label in LABELS[1:]]
    kept: list[int] = []
    scores: list[float] = []
    back: list[dict[int, int]] = []
    for row in rows:
        labels = {y for y, s in enumerate(row) if s >= max(row) - beam} | {continuation[p] for p in kept if p}
        if not kept:
            kept, scores = sorted(labels), [row[y] for y in sorted(labels)]
            continue
        ways = {y: max((scores[k] + transitions[p][y], -p) for k, p in enumerate(kept)) for y in sorted(labels)}
        back.append({y: -way[1] for y, way in ways.items()})
        kept, scores = sorted(ways), [ways[y][0] + row[y] for y in sorted(ways)]
    if not kept:
        return []
    _, last = max((s, -y) for y, s in zip(kept, scores, strict=True))
    path = [-last]
    for pointers in reversed(back):
        path.append(pointers[path[-1]])
    return path[::-1]


@pytest.mark.parametrize("beam", [0.0, 2.0, BEAM, 1e9])
def test_the_decoder_finds_what_a_plain_search_of_the_same_lattice_finds(beam: float) -> None:
    """Small whole-number scores make ties common: the bounds and the tie rule are exercised too; with
    numpy, sequences of different lengths (and empty ones) decoded side by side find the same."""
    rng = random.Random(7)
    n = len(LABELS)
    for trial in range(120):
        spread = rng.choice([2, 6, 12])
        transitions = [[float(rng.randint(-spread, spread)) for _ in range(n)] for _ in range(n)]
        if trial % 3 == 0:
            transitions = load_default_model().transitions
        decoder = Decoder(transitions, beam)
        batch = [[[float(rng.randint(-6, 6)) for _ in range(n)] for _ in range(rng.randint(0, 12))] for _ in range(5)]
        expected = [_plain_beam_search(rows, transitions, beam) for rows in batch]
        assert [decoder.decode(rows) for rows in batch] == expected
        if numpy is not None:  # the same search over the whole batch at once, as arrays (crf_numpy.py)
            arrays = [numpy.array(rows).reshape(len(rows), n) for rows in batch]
            assert decoder.batched().decode_many(arrays) == expected  # type: ignore[union-attr]


def test_the_decoder_agrees_with_a_plain_search_on_the_shipped_tagger() -> None:
    tagger = load_default_tagger()
    transitions = tagger.model.transitions
    for text in [*TEXTS, *_seed_lines()]:
        rows = tagger.emissions(text, *_columns(text))
        assert Decoder(transitions).decode(rows) == _plain_beam_search(rows, transitions, BEAM), text


def test_the_beam_keeps_nearly_every_label_of_the_full_search() -> None:
    tagger = load_default_tagger()
    same = total = 0
    for text in [*TEXTS, *_seed_lines()]:
        tokens, columns = _columns(text)
        rows = tagger.emissions(text, tokens, columns)
        beam, full = viterbi(rows, tagger.model.transitions), viterbi(rows, tagger.model.transitions, beam=1e9)
        same += sum(a == b for a, b in zip(beam, full, strict=True))
        total += len(full)
    assert total > 1000 and same >= 0.999 * total


def _entities(text: str, with_tagger: bool) -> list[tuple[str, str]]:
    tagger = load_default_tagger() if with_tagger else None
    return [(t.text, t.type) for t in tag_text(text, load_default_lexicon(), tagger)]


@pytest.mark.parametrize(
    ("text", "entity"),
    [
        ("Treatment with xylofrazine within 4 weeks prior to screening", ("xylofrazine", "Drug")),
        ("Known hypersensitivity to Lorbrena", ("Lorbrena", "Drug")),
        ("Use of any investigational drug within 30 days", ("investigational drug", "Drug")),
    ],
)
def test_the_tagger_recognises_names_the_lexicon_never_saw(text: str, entity: tuple[str, str]) -> None:
    assert entity not in _entities(text, with_tagger=False)
    assert entity in _entities(text, with_tagger=True)


@pytest.mark.parametrize(
    ("text", "names"),
    [  # drugs approved after Chia's trials (2018), by the WHO INN stem they carry
        ("Treated with efgartigimod or rozanolixizumab", ["efgartigimod", "rozanolixizumab"]),
        ("Prior treatment with siponimod", ["siponimod"]),
        ("Treated with risdiplam or nusinersen", ["risdiplam", "nusinersen"]),
        ("Received CAR T-cell therapy with tisagenlecleucel", ["tisagenlecleucel"]),
    ],
)
def test_drugs_named_after_the_corpus_are_drugs_by_their_stem(text: str, names: list[str]) -> None:
    lexicon = load_default_lexicon()
    assert not any(name in table for name in names for table in (lexicon.phrases, lexicon.heads, lexicon.plain))
    found = _entities(text, with_tagger=True)
    assert [name for name in names if (name, "Drug") in found] == names


def test_a_named_scale_with_its_abbreviation_is_one_measurement_carrying_the_value() -> None:
    text = "Eastern Cooperative Oncology Group (ECOG) performance status of 0-2"
    (found,) = tag_text(text, load_default_lexicon(), load_default_tagger())
    assert (found.text, found.type) == ("Eastern Cooperative Oncology Group (ECOG) performance status", "Measurement")
    assert found.value is not None and (found.value.low, found.value.high) == (0, 2)


def test_tagging_is_deterministic_and_the_weights_load_the_same_every_time() -> None:
    text = " ".join(_seed_lines()[:40])
    first = tag_text(text, load_default_lexicon(), load_default_tagger())
    assert tag_text(text, load_default_lexicon(), load_default_tagger()) == first
    assert CrfModel.load(TAGGER_PATH) == load_default_model()


def test_the_weights_file_credits_chia_and_round_trips(tmp_path: Path) -> None:
    header = TAGGER_PATH.read_text(encoding="utf-8").split("\ntrans", 1)[0]
    assert "Kury" in header and "CC BY 4.0" in header and "train_tagger" in header
    model = load_default_model()
    model.save(tmp_path / "copy.tsv", "copy")
    assert CrfModel.load(tmp_path / "copy.tsv") == model


def test_a_malformed_weights_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text("# header\ntrans\tO\tO\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.tsv:2"):
        CrfModel.load(path)


@pytest.mark.slow
def test_training_is_reproducible_on_a_slice_of_chia() -> None:
    pytest.importorskip("pycrfsuite", reason="training needs python-crfsuite (pip install -e '.[train]')")
    from pipeline.chia import read_chia_dir
    from pipeline.extract.rules.train_tagger import train

    docs = read_chia_dir(shared_path("chia-dev"))[:40]
    first, second = train(docs, {}), train(docs, {})
    assert first == second and first.state
    text = "Known hypersensitivity to Lorbrena"
    tagger = type(load_default_tagger())(first, load_default_lexicon().word_type)
    assert tag_text(text, load_default_lexicon(), tagger) == tag_text(text, load_default_lexicon(), tagger)
