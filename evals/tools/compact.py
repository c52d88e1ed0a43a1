"""Parser for the compact gold annotation format (evals/gold_src/FORMAT.md).

Parsing is separate from building so that every line keeps its line number: all later errors
(text not found, unknown criterion) name `file:line`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENTITY_TYPES = ("Condition", "Drug", "Procedure", "Measurement", "Observation", "Device", "Person", "Visit")
COMPARATORS = ("<", "<=", ">", ">=", "=", "between")
DIRECTIONS = ("before", "after", "during")
HEADER_KEYS = ("doc", "source", "annotator", "method", "date", "notes")
REQUIRED_KEYS = ("doc", "source", "annotator", "method", "date")
LIST_FIELDS = ("phases", "collaborators", "conditions", "interventions", "sites")
SCALAR_FIELDS = (
    "title", "nct_id", "status", "end_date", "enrollment", "sex", "min_age", "max_age",
    "healthy_volunteers", "lead_sponsor",
)
_OCCURRENCE = re.compile(r"^(.*?)@(\d+)$", re.S)


class CompactError(ValueError):
    """A problem in a compact file; the message starts with `file:line:`."""


@dataclass
class Located:
    """Text to find in the source, with the occurrence to take (None = the one nearest the entity)."""

    text: str
    occurrence: int | None


@dataclass
class ValueSpec:
    where: str
    text: Located
    comparator: str | None
    low: float | None
    high: float | None
    unit: str | None


@dataclass
class TemporalSpec:
    where: str
    text: Located
    direction: str | None
    anchor: str | None
    min_days: float | None
    max_days: float | None


@dataclass
class EntitySpec:
    where: str
    type: str
    text: Located
    negated: bool = False
    value: ValueSpec | None = None
    temporal: TemporalSpec | None = None


@dataclass
class CriterionSpec:
    """A criterion defined in a `criteria:` block: span from `first` to the end of `last`."""

    where: str
    id: str
    parent: str | None
    first: str
    last: str


@dataclass
class TrialOverride:
    where: str
    field: str
    value: Any
    text: str | None


@dataclass
class CompactDoc:
    path: Path
    header: dict[str, str]
    trial: list[TrialOverride] = field(default_factory=list)
    criteria: list[CriterionSpec] | None = None
    drop: list[tuple[str, str]] = field(default_factory=list)
    sections: dict[str, list[EntitySpec]] = field(default_factory=dict)
    section_lines: dict[str, str] = field(default_factory=dict)


def _located(raw: str, where: str, *, default_first: bool) -> Located:
    raw = raw.strip()
    match = _OCCURRENCE.match(raw)
    if match and match.group(1):
        k = int(match.group(2))
        if k < 1:
            raise CompactError(f"{where}: occurrence @{k} must be 1 or more")
        return Located(match.group(1), k)
    if not raw:
        raise CompactError(f"{where}: empty text")
    return Located(raw, 1 if default_first else None)


def _number(token: str, where: str) -> float | None:
    if token == "-":
        return None
    try:
        return float(token)
    except ValueError:
        raise CompactError(f"{where}: {token!r} is not a number or '-'") from None


def _split_normalised(body: str, where: str, what: str, size: int) -> tuple[str, list[str]]:
    text, arrow, norm = body.rpartition("=>")
    if not arrow:
        raise CompactError(f"{where}: {what} needs '<source text> => <normalised>'")
    tokens = norm.split()
    if len(tokens) != size:
        raise CompactError(f"{where}: {what} needs {size} normalised fields after '=>', got {norm.strip()!r}")
    return text, tokens


def _value(body: str, where: str) -> ValueSpec:
    """`value: <text> => <comparator> <low> <high> <unit...>`; unit may contain spaces (`x ULN`)."""
    text, arrow, norm = body.rpartition("=>")
    tokens = norm.split()
    if not arrow or len(tokens) < 4:
        raise CompactError(f"{where}: value needs '<text> => <comparator> <low> <high> <unit>'")
    comparator, low, high, unit = tokens[0], tokens[1], tokens[2], " ".join(tokens[3:])
    if comparator != "-" and comparator not in COMPARATORS:
        raise CompactError(f"{where}: comparator {comparator!r} is not one of {' '.join(COMPARATORS)} or '-'")
    return ValueSpec(
        where, _located(text, where, default_first=False), None if comparator == "-" else comparator,
        _number(low, where), _number(high, where), None if unit == "-" else unit,
    )


def _temporal(body: str, where: str) -> TemporalSpec:
    text, tokens = _split_normalised(body, where, "temporal", 4)
    direction, anchor, low, high = tokens
    if direction != "-" and direction not in DIRECTIONS:
        raise CompactError(f"{where}: direction {direction!r} is not one of {' '.join(DIRECTIONS)} or '-'")
    return TemporalSpec(
        where, _located(text, where, default_first=False), None if direction == "-" else direction,
        None if anchor == "-" else anchor, _number(low, where), _number(high, where),
    )


def parse_entity(line: str, where: str) -> EntitySpec:
    """`Type | text[@k] [| negated] [| value: ...] [| temporal: ...]`."""
    parts = [p.strip() for p in line.split(" | ")]
    if len(parts) < 2:
        raise CompactError(f"{where}: entity line needs 'Type | text'")
    if parts[0] not in ENTITY_TYPES:
        raise CompactError(f"{where}: unknown entity type {parts[0]!r} (one of {', '.join(ENTITY_TYPES)})")
    entity = EntitySpec(where, parts[0], _located(parts[1], where, default_first=True))
    for part in parts[2:]:
        key, _, body = part.partition(":")
        if part == "negated":
            entity.negated = True
        elif key == "value" and entity.value is None:
            entity.value = _value(body, where)
        elif key == "temporal" and entity.temporal is None:
            entity.temporal = _temporal(body, where)
        else:
            raise CompactError(f"{where}: unexpected or repeated field {part!r}")
    return entity


def _trial_override(body: str, where: str) -> TrialOverride:
    """`trial: <field> = <JSON value or bare word> [| <exact source text>]`."""
    assignment, _, text = body.partition(" | ")
    name, eq, raw = assignment.partition("=")
    name, raw = name.strip(), raw.strip()
    if not eq or name not in SCALAR_FIELDS + LIST_FIELDS:
        raise CompactError(f"{where}: trial override needs '<field> = <value>' with a Trial field, got {body!r}")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return TrialOverride(where, name, value, text.strip() or None)


def _criterion_spec(body: str, where: str) -> CriterionSpec:
    """`<id> [< parent] | <first words> ... <last words>`."""
    head, bar, span = body.partition(" | ")
    first, dots, last = span.partition(" ... ")
    ident, _, parent = head.partition("<")
    ident, parent = ident.strip(), parent.strip() or None
    if not bar or not dots or not re.fullmatch(r"(inc|exc)-\d+(\.\d+)*", ident):
        raise CompactError(f"{where}: criteria line needs '<inc-N|exc-N> [< parent] | <first> ... <last>'")
    return CriterionSpec(where, ident, parent, first.strip(), last.strip())


def parse_compact(path: Path) -> CompactDoc:
    """Parse one compact file; raises CompactError naming `file:line` on malformed lines."""
    header: dict[str, str] = {}
    doc = CompactDoc(path=path, header=header)
    section: str | None = None
    in_criteria = False
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        where = f"{path}:{number}"
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section, in_criteria = line[1:-1].strip(), False
            if section in doc.sections:
                raise CompactError(f"{where}: criterion [{section}] appears twice")
            doc.sections[section] = []
            doc.section_lines[section] = where
        elif section is not None:
            doc.sections[section].append(parse_entity(line.strip(), where))
        elif line.strip() == "criteria:":
            in_criteria, doc.criteria = True, []
        elif in_criteria and line.startswith((" ", "\t")):
            doc.criteria.append(_criterion_spec(line.strip(), where))
        elif line.startswith("drop:"):
            doc.drop.extend((cid.strip(), where) for cid in line[len("drop:"):].split(",") if cid.strip())
        elif line.startswith("trial:"):
            doc.trial.append(_trial_override(line[len("trial:"):].strip(), where))
        else:
            key, colon, value = line.partition(":")
            if not colon or key not in HEADER_KEYS:
                raise CompactError(f"{where}: expected a header line ({', '.join(HEADER_KEYS)}), got {line!r}")
            header[key] = (header.get(key, "") + " " + value.strip()).strip()
    missing = [k for k in REQUIRED_KEYS if not header.get(k)]
    if missing:
        raise CompactError(f"{path}:1: header is missing {', '.join(missing)}")
    return doc
