"""Reader for the Chia corpus (BRAT standoff), shared by the rules backend and the scorer.

A leaf module (it imports nothing of the pipeline), so the extract stage can learn from Chia without
importing the evaluate stage above it; `pipeline.evaluate.chia` re-exports it for the scorer.

Chia (Kury F. et al., "Chia, a large annotated corpus of clinical trial eligibility criteria",
Sci Data 2020, CC BY 4.0, doi:10.6084/m9.figshare.11855817) stores one criteria block per
`NCTxxxx_inc.txt` / `NCTxxxx_exc.txt` with a BRAT `.ann` beside it.

How the corpus behaves, and what this reader does about it:
- About 800 `.txt` files use `\\r\\n` line ends and the offsets count the `\\r`, so the text is read
  newline-preserving (`newline=""`) and never normalised.
- A handful of entities have text that does not match the `.txt` at their offsets (mostly a span that
  swallows a `\\r`); they are skipped and described in `offset_errors`.
- Discontinuous entities have fragments `start end;start end`; their text joins fragments with a space.
- `*\\tOR T1 T2 T3` lines (equivalence sets) are expanded into every unordered pair, as ("OR", a, b).
- Malformed lines are skipped with a message in `offset_errors`; the reader never raises on content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from pipeline.schema import EntityType

DOMAIN_TYPES: tuple[str, ...] = tuple(t.value for t in EntityType)  # the eight Chia domain types


@dataclass(frozen=True)
class ChiaEntity:
    """One `T` line of a `.ann` file."""

    id: str
    type: str
    text: str
    fragments: tuple[tuple[int, int], ...]

    @property
    def start(self) -> int:
        return self.fragments[0][0]

    @property
    def end(self) -> int:
        return self.fragments[-1][1]


@dataclass
class ChiaDocument:
    doc_id: str
    nct_id: str
    kind: str
    text: str
    entities: list[ChiaEntity] = field(default_factory=list)
    relations: list[tuple[str, str, str]] = field(default_factory=list)
    offset_errors: list[str] = field(default_factory=list)


def _parse_fragments(spec: str) -> tuple[tuple[int, int], ...]:
    fragments = []
    for part in spec.split(";"):
        start, end = part.split()
        fragments.append((int(start), int(end)))
    return tuple(fragments)


def _parse_entity(line: str, text: str, where: str) -> ChiaEntity | str:
    """A ChiaEntity, or an error message when the line is malformed or its offsets are wrong."""
    parts = line.split("\t")
    if len(parts) < 3:
        return f"{where}: malformed entity line {line!r}"
    label, _, spec = parts[1].partition(" ")
    try:
        fragments = _parse_fragments(spec)
    except ValueError:
        return f"{where}: bad fragments in {line!r}"
    if any(not 0 <= s <= e <= len(text) for s, e in fragments):
        return f"{where}: {parts[0]} offsets {spec} are outside the text"
    actual = " ".join(text[s:e] for s, e in fragments)
    if actual != parts[2]:
        return f"{where}: {parts[0]} {label} text {parts[2]!r} != {actual!r} at {spec}"
    return ChiaEntity(id=parts[0], type=label, text=parts[2], fragments=fragments)


def _parse_relations(line: str) -> list[tuple[str, str, str]]:
    """`R1\\tHas_value Arg1:T3 Arg2:T2` -> one triple; `*\\tOR T5 T6 T7` -> every pair."""
    parts = line.split("\t")
    if len(parts) < 2:
        return []
    fields_ = parts[1].split()
    if not fields_:
        return []
    if line.startswith("*"):
        return [(fields_[0], a, b) for a, b in combinations(fields_[1:], 2)]
    args = [f.split(":", 1)[1] for f in fields_[1:] if ":" in f]
    return [(fields_[0], args[0], args[1])] if len(args) == 2 else []


def read_chia_document(txt_path: Path) -> ChiaDocument:
    """Read `NCTxxxx_inc.txt` and its `.ann` (a missing `.ann` means no annotations)."""
    txt_path = Path(txt_path)
    with open(txt_path, encoding="utf-8", newline="") as handle:
        text = handle.read()
    nct_id, _, suffix = txt_path.stem.partition("_")
    doc = ChiaDocument(
        doc_id=txt_path.stem,
        nct_id=nct_id,
        kind="exclusion" if suffix.startswith("exc") else "inclusion",
        text=text,
    )
    ann_path = txt_path.with_suffix(".ann")
    if not ann_path.is_file():
        return doc
    with open(ann_path, encoding="utf-8", newline="") as handle:
        lines = handle.read().splitlines()
    for number, line in enumerate(lines, 1):
        where = f"{ann_path.name}:{number}"
        if line.startswith("T"):
            parsed = _parse_entity(line, text, where)
            if isinstance(parsed, str):
                doc.offset_errors.append(parsed)
            else:
                doc.entities.append(parsed)
        elif line.startswith(("R", "*")):
            doc.relations.extend(_parse_relations(line))
    return doc


def read_chia_dir(directory: Path) -> list[ChiaDocument]:
    """Every `.txt` document in a Chia folder, sorted by doc_id."""
    return [read_chia_document(p) for p in sorted(Path(directory).glob("*.txt"))]


UNANNOTATED_CRITERIA = frozenset(
    """
    Non-query-able Post-eligibility Non-representable Informed_consent Pregnancy_considerations Competing_trial
    Not_a_criteria Intoxication_considerations
    """.split()  # noqa: SIM905
)  # Chia's labels for (part of) a criterion its annotators did not break into entities


def unannotated_spans(doc: ChiaDocument) -> list[tuple[int, int]]:
    """(start, end) of each stretch Chia labels as a criterion it left unannotated (`UNANNOTATED_CRITERIA`:
    consent, pregnancy, investigator's judgement, ...): in chia-dev 1,094 stretches that hold 167 of its
    13,490 domain entities, so a name found there says more about the corpus than about precision."""
    return sorted((e.start, e.end) for e in doc.entities if e.type in UNANNOTATED_CRITERIA)
