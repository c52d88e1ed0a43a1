"""Registry pages: find the metadata labels and the criteria section of a scraped page.

Scraped pages glue labels to the previous value (`Early Phase 1Accepts Healthy Volunteers?`,
`NoDetails`), repeat values (`Recruiting\\nRecruiting`) and come in several layouts (a
ClinicalTrials.gov-like one, and CenterWatch's with `Ages 5-18 All Genders` and a study site).
Labels are therefore found anywhere a known label text starts a line or is glued to a non-blank
character, and a value is the text between its label and the next label.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.ingest import normalise
from pipeline.schema import Evidence, Trial
from pipeline.segment.criteria import split_lines
from pipeline.segment.headers import match_header

# (label text, field it fills or None, whether the label must end its line)
LABELS: list[tuple[str, str | None, bool]] = [
    ("Overview", "title", True),
    ("Status:", "status", False),
    ("Trial end date:", "end_date", False),
    ("Target enrollment:", "enrollment", False),
    ("Participant gender:", "sex", False),
    ("Study Summary", None, True),
    ("Summary", None, True),
    ("Phase:", "phases", False),
    ("Phase", "phases", True),
    ("Accepts Healthy Volunteers?", "healthy_volunteers", False),
    ("Details", None, True),
    ("Lead Sponsor:", "lead_sponsor", False),
    ("Collaborators:", "collaborators", False),
    ("Collaborator:", "collaborators", False),
    ("Treatments:", "interventions", False),
    ("Treatment", "interventions", True),
    ("Interventions:", "interventions", False),
    ("Conditions:", "conditions", False),
    ("Condition", "conditions", True),
    ("Clinical Study ID", "study_id", True),
    ("Eligibility Criteria", "criteria", True),
    ("Criteria", "criteria", True),
    ("Study Design", None, True),
    ("Connect with a study center", "sites", True),
    ("Not the study for you?", None, False),
]
_FIELD = {text: name for text, name, _ in LABELS}
_LABEL_RE = re.compile(
    "|".join(
        rf"(?<![ \t]){re.escape(text)}" + (r"(?=[ \t]*(?:[\r\n]|$))" if line_only else "")
        for text, _, line_only in sorted(LABELS, key=lambda label: -len(label[0]))
    )
)
_AGES = re.compile(r"\bAges?\s+(?P<low>\d+)(?:\s*[-–]\s*(?P<high>\d+))?\+?(?:\s+(?P<sex>All Genders|Female|Male))?")
_NCT = re.compile(r"\bNCT\d{8}\b")
_TRAILING_STATUS = re.compile(r"(?P<status>Active - (?:Not )?Recruiting|Not yet recruiting|Recruiting|Completed)$")
_SCALARS = {"status", "end_date", "enrollment", "sex", "healthy_volunteers", "lead_sponsor", "title"}


@dataclass
class Label:
    text: str
    field: str | None
    start: int
    end: int


@dataclass
class Page:
    trial: Trial
    criteria_start: int
    criteria_end: int
    warnings: list[str]


def find_labels(text: str) -> list[Label]:
    return [Label(m.group(), _FIELD[m.group()], m.start(), m.end()) for m in _LABEL_RE.finditer(text)]


def value_lines(text: str, start: int, end: int) -> list[Evidence]:
    """Non-blank lines of text[start:end] as evidence, repeated consecutive values dropped."""
    lines: list[Evidence] = []
    for match in re.finditer(r"[^\r\n]+", text[start:end]):
        stripped = match.group().strip()
        if not stripped or (lines and lines[-1].text == stripped):
            continue
        offset = start + match.start() + match.group().index(stripped)
        lines.append(Evidence(value=stripped, text=stripped, start=offset, end=offset + len(stripped)))
    return lines


def parse_page(text: str) -> Page:
    labels = find_labels(text)
    criteria_start, criteria_end = _criteria_bounds(text, labels)
    outside = [label for label in labels if label.end <= criteria_start or label.start >= criteria_end]
    trial = Trial()
    warnings: list[str] = []
    first = outside[0].start if outside else criteria_start
    if text[:first].strip():
        trial.title = _first(value_lines(text, 0, first))
    for index, label in enumerate(outside):
        value_end = outside[index + 1].start if index + 1 < len(outside) else len(text)
        if label.start < criteria_start <= value_end:
            value_end = criteria_start
        _fill(trial, label, value_lines(text, label.end, value_end), warnings, text)
    _ages(text, 0, criteria_start, trial)
    nct = _NCT.search(text, 0, criteria_start)
    if nct and trial.nct_id is None:
        trial.nct_id = Evidence(value=nct.group(), text=nct.group(), start=nct.start(), end=nct.end())
    return Page(trial, criteria_start, criteria_end, warnings)


def _criteria_bounds(text: str, labels: list[Label]) -> tuple[int, int]:
    """Where the criteria section starts and ends (end = next page section, or the end of text).

    Only a label at the start of its line ends the section: inside criteria, a label word glued to
    the text before it ("cohort (Phase" wrapped before "2 only)") is the criterion's own text."""
    opening = next((label for label in labels if label.field == "criteria"), None)
    header = criteria_header_start(text, opening.start if opening is not None else len(text))
    if opening is not None and (header is None or opening.start < header):
        start = opening.end
    elif header is not None:
        start = header
    else:
        return len(text), len(text)
    closing = next((label for label in labels
                    if label.start >= start and label.field != "criteria" and _starts_line(text, label.start)), None)
    return start, closing.start if closing else len(text)


def criteria_header_start(text: str, before: int) -> int | None:
    """Offset of the first line before `before` that is an inclusion/exclusion/eligibility header."""
    for line in split_lines(text, 0, before):
        header = match_header(line.text)
        if header is not None:
            return line.start
    return None


def _starts_line(text: str, position: int) -> bool:
    line_start = max(text.rfind("\n", 0, position), text.rfind("\r", 0, position)) + 1
    return not text[line_start:position].strip()


def _first(values: list[Evidence]) -> Evidence | None:
    return values[0] if values else None


def _fill(trial: Trial, label: Label, values: list[Evidence], warnings: list[str], text: str) -> None:
    name = label.field
    if name is None or not values:
        return
    if name == "sites":
        _site(trial, values, text)
    elif name == "phases":
        trial.phases = [_with(values[0], phase) for phase in normalise.phases(values[0].text)]
    elif name in ("collaborators", "interventions"):
        getattr(trial, name).extend(values)
    elif name == "conditions":
        trial.conditions.extend(_with(v, re.sub(r"\s*\([^()]*\)$", "", v.text)) for v in values)
    elif name in _SCALARS and getattr(trial, name) is None:
        _scalar(trial, name, values[0], warnings)


def _with(evidence: Evidence, value: object) -> Evidence:
    return evidence.model_copy(update={"value": value})


def _scalar(trial: Trial, name: str, evidence: Evidence, warnings: list[str]) -> None:
    parsers: dict[str, Callable[[str], object]] = {
        "status": normalise.status,
        "end_date": normalise.iso_date,
        "enrollment": normalise.enrollment,
        "sex": normalise.sex,
        "healthy_volunteers": normalise.yes_no,
        "lead_sponsor": str,
        "title": str,
    }
    value = parsers[name](evidence.text)
    if value is None:
        if name == "enrollment" and evidence.text.strip() == "0":
            warnings.append("target enrollment 0 is a placeholder on this page: recorded as unknown")
        else:
            warnings.append(f"{name}: cannot read {evidence.text!r}")
        return
    setattr(trial, name, _with(evidence, value))


def _ages(text: str, start: int, end: int, trial: Trial) -> None:
    match = _AGES.search(text, start, end)
    if not match:
        return
    for group, name in (("low", "min_age"), ("high", "max_age")):
        if match.group(group) and getattr(trial, name) is None:
            number = match.group(group)
            setattr(trial, name, Evidence(value=float(number), text=number, start=match.start(group),
                                          end=match.end(group)))
    if match.group("sex") and trial.sex is None:
        trial.sex = Evidence(value=normalise.sex(match.group("sex")), text=match.group("sex"),
                             start=match.start("sex"), end=match.end("sex"))


def _site(trial: Trial, lines: list[Evidence], text: str) -> None:
    """CenterWatch: facility / 'City, State ZIP' / country glued to the site's recruiting status."""
    *place, last = lines[:3]
    status = _TRAILING_STATUS.search(last.text)
    country = last
    if status:
        cut = status.start()
        begin = last.start or 0  # page evidence always has offsets
        country = Evidence(value=last.text[:cut], text=last.text[:cut], start=begin, end=begin + cut)
        if trial.status is None:
            trial.status = Evidence(value=normalise.status(status.group()), text=status.group(),
                                    start=begin + cut, end=last.end)
    parts = [*place, country] if country.text else place
    value: dict[str, str] = {"facility": parts[0].text}
    if len(parts) >= 3:
        city_state = re.match(r"(?P<city>[^,]+),\s*(?P<state>.*?)\s*(?P<zip>\d[\d\- ]*)?$", parts[1].text)
        if city_state:
            value.update({k: v for k, v in city_state.groupdict().items() if v})
        value["country"] = parts[-1].text
    source_start, source_end = parts[0].start, parts[-1].end
    trial.sites.append(Evidence(value=value, text=text[source_start:source_end], start=source_start, end=source_end))
