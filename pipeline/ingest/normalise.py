"""Normalise registry metadata to ClinicalTrials.gov API v2 conventions.

Each function takes the raw text as written on a page or in a table and returns the API v2 value,
or None when the text does not say anything we can trust (the caller then records no value).
"""

from __future__ import annotations

import calendar
import re

STATUSES = {
    "recruiting": "RECRUITING",
    "active - recruiting": "RECRUITING",
    "not yet recruiting": "NOT_YET_RECRUITING",
    "active, not recruiting": "ACTIVE_NOT_RECRUITING",
    "active not recruiting": "ACTIVE_NOT_RECRUITING",
    "active - not recruiting": "ACTIVE_NOT_RECRUITING",
    "enrolling by invitation": "ENROLLING_BY_INVITATION",
    "completed": "COMPLETED",
    "terminated": "TERMINATED",
    "suspended": "SUSPENDED",
    "withdrawn": "WITHDRAWN",
    "unknown": "UNKNOWN",
    "unknown status": "UNKNOWN",
    "available": "AVAILABLE",
    "no longer available": "NO_LONGER_AVAILABLE",
    "temporarily not available": "TEMPORARILY_NOT_AVAILABLE",
    "approved for marketing": "APPROVED_FOR_MARKETING",
    "withheld": "WITHHELD",
}
API_STATUSES = frozenset(STATUSES.values())

_PHASE_RE = re.compile(r"(early\s+phase\s*1|phase\s*([1-4]|i{1,3}|iv))", re.IGNORECASE)
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4"}
API_PHASES = frozenset({"EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3", "PHASE4", "NA"})

SEXES = {"all": "ALL", "both": "ALL", "all genders": "ALL", "female": "FEMALE", "male": "MALE"}
_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(year|month|week|day|hour|minute)s?\s*(?:old)?\s*$", re.IGNORECASE)
_YEARS_PER = {"year": 1.0, "month": 1 / 12, "week": 7 / 365.25, "day": 1 / 365.25, "hour": 1 / 8766,
              "minute": 1 / 525960}


def status(text: str) -> str | None:
    key = " ".join(text.split()).strip(" .").lower()
    if text.strip().upper().replace(" ", "_") in API_STATUSES:
        return text.strip().upper().replace(" ", "_")
    return STATUSES.get(key)


def phases(text: str) -> list[str]:
    """'Early Phase 1' -> [EARLY_PHASE1]; 'Phase 1/Phase 2' -> [PHASE1, PHASE2]; 'N/A' -> [NA]."""
    cleaned = text.strip()
    if cleaned.upper() in API_PHASES:
        return [cleaned.upper()]
    if cleaned.lower() in {"n/a", "na", "not applicable"}:
        return ["NA"]
    found: list[str] = []
    for match in _PHASE_RE.finditer(cleaned):
        if match.group(2) is None:
            phase = "EARLY_PHASE1"
        else:
            phase = "PHASE" + _ROMAN.get(match.group(2).lower(), match.group(2))
        if phase not in found:
            found.append(phase)
    return found


def sex(text: str) -> str | None:
    return SEXES.get(" ".join(text.split()).lower())


def age_years(text: str) -> float | None:
    """'18 Years' -> 18; '6 Months' -> 0.5; 'N/A' -> None."""
    match = _AGE_RE.match(text)
    if not match:
        return None
    years = float(match.group(1)) * _YEARS_PER[match.group(2).lower()]
    return round(years, 4)


def iso_date(text: str, *, end_of_period: bool = True) -> str | None:
    """ISO YYYY-MM-DD. A month-precision date ('2026-09', 'September 2026') becomes the last day
    of that month when `end_of_period` (an end date is reached by then), else the first."""
    cleaned = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", cleaned):
        return cleaned
    match = re.fullmatch(r"(\d{4})-(\d{2})", cleaned)
    if match:
        year, month = int(match.group(1)), int(match.group(2))
    else:
        match = re.fullmatch(r"([A-Za-z]+)\s+(?:(\d{1,2}),\s*)?(\d{4})", cleaned)
        if not match or match.group(1)[:3].lower() not in _MONTHS:
            return None
        year, month = int(match.group(3)), _MONTHS[match.group(1)[:3].lower()]
        if match.group(2):
            return f"{year:04d}-{month:02d}-{int(match.group(2)):02d}"
    if not 1 <= month <= 12:
        return None
    day = calendar.monthrange(year, month)[1] if end_of_period else 1
    return f"{year:04d}-{month:02d}-{day:02d}"


_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}


def yes_no(text: str) -> bool | None:
    return {"yes": True, "no": False, "true": True, "false": False, "accepts healthy volunteers": True}.get(
        text.strip().lower()
    )


def enrollment(text: str) -> int | None:
    """A count of participants. 0 is a placeholder on scraped pages (trials do not target zero
    participants), so it is treated as 'not reported'."""
    cleaned = text.strip().replace(",", "")
    if not cleaned.isdigit():
        return None
    count = int(cleaned)
    return count or None
