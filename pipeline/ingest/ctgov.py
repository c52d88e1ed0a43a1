"""ClinicalTrials.gov API v2 JSON.

`source_text` of a study is assembled as: the brief title, a blank line, then the
`eligibilityCriteria` text verbatim. The title evidence points into it; every other metadata
field comes from its structured field (offsets null).

Shapes are checked, never assumed: a study without a usable `nctId` or criteria text is an error
naming the field and what was expected; a metadata field of the wrong type (`statusModule` a list,
`phases` a string) is left out with a warning in the record, so nothing is lost silently and a
string is never read as a list of characters.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from pipeline.errors import IngestError
from pipeline.ingest import (
    JSON_TYPE_NAMES,
    Document,
    guarded_row,
    json_kind,
    normalise,
    sha256_text,
    unicode_problem,
)
from pipeline.ingest.json_stream import CHUNK_BYTES, iter_studies
from pipeline.schema import Evidence, Source, Trial


def read_ctgov(path: Path, handle: BinaryIO, max_bytes: int, chunk_bytes: int = CHUNK_BYTES
               ) -> Iterator[Document | IngestError]:
    """The studies of a ClinicalTrials.gov JSON stream, decoded one at a time (see `json_stream`):
    `max_bytes` limits one study, not the file."""
    for item in iter_studies(path, handle, max_bytes, chunk_bytes):
        if isinstance(item, IngestError):
            yield item
        else:
            row, study = item
            yield guarded_row(path, row, partial(study_document, path, row, study))


class StudyFields:
    """Typed access to one study's `protocolSection`: a field of the wrong type reads as absent
    and leaves a warning naming its path, what it is and what was expected."""

    def __init__(self, section: dict[str, Any]) -> None:
        self.section = section
        self.warnings: list[str] = []

    def get(self, dotted: str, expected: type) -> Any:
        node: Any = self.section
        walked = "protocolSection"
        for key in dotted.split("."):
            if node is None:
                return None
            if not isinstance(node, dict):
                return self._wrong(walked, node, dict)
            node, walked = node.get(key), f"{walked}.{key}"
        if node is None:
            return None
        if not isinstance(node, expected) or (expected is int and isinstance(node, bool)):
            return self._wrong(walked, node, expected)
        if isinstance(node, str) and (problem := unicode_problem(node)):
            self._warn(f"{walked} {problem}: not read")
            return None
        return node

    def text(self, dotted: str) -> str | None:
        return self.get(dotted, str)

    def texts(self, dotted: str) -> list[str]:
        """A list of strings; wrong elements are left out with a warning each."""
        return [item for index, item in enumerate(self.get(dotted, list) or [])
                if self._element(f"{dotted}[{index}]", item, str)]

    def names(self, dotted: str, keys: tuple[str, ...] = ("name",)) -> list[dict[str, str]]:
        """A list of objects, each reduced to its text fields among `keys`."""
        found = []
        for index, item in enumerate(self.get(dotted, list) or []):
            if not self._element(f"{dotted}[{index}]", item, dict):
                continue
            fields = {key: value for key in keys
                      if (value := item.get(key)) and self._element(f"{dotted}[{index}].{key}", value, str)}
            found.append(fields)
        return found

    def _element(self, where: str, value: Any, expected: type) -> bool:
        if not isinstance(value, expected):
            self._wrong(f"protocolSection.{where}", value, expected)
            return False
        if isinstance(value, str) and (problem := unicode_problem(value)):
            self._warn(f"protocolSection.{where} {problem}: not read")
            return False
        return True

    def _wrong(self, where: str, value: Any, expected: type) -> None:
        self._warn(f"{where} is {json_kind(value)}, expected {JSON_TYPE_NAMES[expected]}: not read")

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def study_document(path: Path, row: int, study: Any) -> Document | IngestError:
    section = study.get("protocolSection") if isinstance(study, dict) else None
    if not isinstance(section, dict):
        return IngestError(str(path), f"row {row}: study has no protocolSection object "
                                      "(not ClinicalTrials.gov API v2 JSON)", row=row)
    fields = StudyFields(section)
    nct_id = fields.text("identificationModule.nctId")
    if not nct_id:
        problem = "; ".join(fields.warnings) or "study has no protocolSection.identificationModule.nctId"
        return IngestError(str(path), f"row {row}: {problem}", row=row)
    criteria = fields.text("eligibilityModule.eligibilityCriteria") or ""
    if fields.warnings:  # the criteria text, or a module on its path, has the wrong shape
        return IngestError(str(path), f"row {row}: {'; '.join(fields.warnings)}", doc_id=nct_id, row=row)
    title = fields.text("identificationModule.briefTitle") or fields.text("identificationModule.officialTitle") or ""
    source_text = f"{title}\n\n{criteria}" if criteria else title
    trial = study_metadata(fields)
    if title:
        trial.title = Evidence(value=title, text=title, start=0, end=len(title))
    source = Source(path=str(path), format="ctgov_json", sha256=sha256_text(source_text), row=row)
    warnings = [] if criteria else ["study has no eligibilityCriteria text"]
    start = len(title) + 2 if criteria else len(source_text)
    return Document(nct_id, source, source_text, layout="criteria", criteria_start=start, trial=trial,
                    warnings=[*warnings, *fields.warnings])


def _evidence(value: Any, text: Any) -> Evidence | None:
    if value is None or value == [] or text in (None, ""):
        return None
    return Evidence(value=value, text=str(text))


def study_metadata(fields: StudyFields) -> Trial:
    status = fields.text("statusModule.overallStatus")
    completion = fields.text("statusModule.completionDateStruct.date")
    enrollment = fields.get("designModule.enrollmentInfo.count", int)
    nct_id = fields.text("identificationModule.nctId")
    min_age, max_age = fields.text("eligibilityModule.minimumAge"), fields.text("eligibilityModule.maximumAge")
    sex = fields.text("eligibilityModule.sex")
    healthy = fields.get("eligibilityModule.healthyVolunteers", bool)
    sponsor = fields.text("sponsorCollaboratorsModule.leadSponsor.name")
    return Trial(
        nct_id=_evidence(nct_id, nct_id),
        status=_evidence(normalise.status(status or ""), status),
        phases=[ev for p in fields.texts("designModule.phases") if (ev := _evidence(p, p))],
        end_date=_evidence(normalise.iso_date(completion or ""), completion),
        enrollment=_evidence(normalise.enrollment(str(enrollment)) if enrollment is not None else None, enrollment),
        sex=_evidence(normalise.sex(sex or ""), sex),
        min_age=_evidence(normalise.age_years(min_age or ""), min_age),
        max_age=_evidence(normalise.age_years(max_age or ""), max_age),
        healthy_volunteers=_evidence(healthy, healthy) if healthy is not None else None,
        lead_sponsor=_evidence(sponsor, sponsor),
        collaborators=[ev for c in fields.names("sponsorCollaboratorsModule.collaborators")
                       if (ev := _evidence(c.get("name"), c.get("name")))],
        conditions=[ev for c in fields.texts("conditionsModule.conditions") if (ev := _evidence(c, c))],
        interventions=[ev for i in fields.names("armsInterventionsModule.interventions")
                       if (ev := _evidence(i.get("name"), i.get("name")))],
        sites=[ev for loc in fields.names("contactsLocationsModule.locations", _SITE_KEYS) if (ev := _site(loc))],
    )


_SITE_KEYS = ("facility", "city", "state", "zip", "country")


def _site(location: dict[str, str]) -> Evidence | None:
    if not location:
        return None
    return Evidence(value=location, text=", ".join(location.values()))
