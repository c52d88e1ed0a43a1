"""ClinicalTrials.gov API v2 JSON.

`source_text` of a study is assembled as: the brief title, a blank line, then the
`eligibilityCriteria` text verbatim. The title evidence points into it; every other metadata
field comes from its structured field (offsets null).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pipeline.errors import IngestError
from pipeline.ingest import Document, decode, normalise, sha256_text
from pipeline.schema import Evidence, Source, Trial


def read_ctgov(path: Path, raw: bytes) -> Iterator[Document | IngestError]:
    text = decode(path, raw)
    if isinstance(text, IngestError):
        yield text
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        yield IngestError(str(path), f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")
        return
    studies = data.get("studies") if isinstance(data, dict) and "studies" in data else data
    if isinstance(studies, dict):
        studies = [studies]
    if not isinstance(studies, list):
        yield IngestError(str(path), "JSON is not a ClinicalTrials.gov study, list of studies or {'studies': [...]}")
        return
    for row, study in enumerate(studies, start=1):
        yield study_document(path, row, study)


def study_document(path: Path, row: int, study: Any) -> Document | IngestError:
    where = f"{path}#{row}"
    section = study.get("protocolSection") if isinstance(study, dict) else None
    if not isinstance(section, dict):
        return IngestError(where, "study has no protocolSection (not ClinicalTrials.gov API v2 JSON)")
    ident = section.get("identificationModule", {})
    nct_id = ident.get("nctId")
    title = ident.get("briefTitle") or ident.get("officialTitle") or ""
    criteria = section.get("eligibilityModule", {}).get("eligibilityCriteria") or ""
    if not nct_id:
        return IngestError(where, "study has no identificationModule.nctId")
    source_text = f"{title}\n\n{criteria}" if criteria else title
    trial = study_metadata(section)
    if title:
        trial.title = Evidence(value=title, text=title, start=0, end=len(title))
    source = Source(path=str(path), format="ctgov_json", sha256=sha256_text(source_text), row=row)
    warnings = [] if criteria else ["study has no eligibilityCriteria text"]
    start = len(title) + 2 if criteria else len(source_text)
    return Document(nct_id, source, source_text, layout="criteria", criteria_start=start, trial=trial,
                    warnings=warnings)


def _evidence(value: Any, text: Any) -> Evidence | None:
    if value is None or value == [] or text in (None, ""):
        return None
    return Evidence(value=value, text=str(text))


def study_metadata(section: dict[str, Any]) -> Trial:
    status = section.get("statusModule", {})
    design = section.get("designModule", {})
    sponsors = section.get("sponsorCollaboratorsModule", {})
    eligibility = section.get("eligibilityModule", {})
    arms = section.get("armsInterventionsModule", {})
    completion = (status.get("completionDateStruct") or {}).get("date")
    enrollment = (design.get("enrollmentInfo") or {}).get("count")
    nct_id = section.get("identificationModule", {}).get("nctId")
    min_age, max_age = eligibility.get("minimumAge"), eligibility.get("maximumAge")
    healthy = eligibility.get("healthyVolunteers")
    return Trial(
        nct_id=_evidence(nct_id, nct_id),
        status=_evidence(normalise.status(status.get("overallStatus") or ""), status.get("overallStatus")),
        phases=[ev for p in design.get("phases") or [] if (ev := _evidence(p, p))],
        end_date=_evidence(normalise.iso_date(completion or ""), completion),
        enrollment=_evidence(normalise.enrollment(str(enrollment)) if enrollment is not None else None, enrollment),
        sex=_evidence(normalise.sex(eligibility.get("sex") or ""), eligibility.get("sex")),
        min_age=_evidence(normalise.age_years(min_age or ""), min_age),
        max_age=_evidence(normalise.age_years(max_age or ""), max_age),
        healthy_volunteers=_evidence(healthy, healthy) if isinstance(healthy, bool) else None,
        lead_sponsor=_evidence((sponsors.get("leadSponsor") or {}).get("name"),
                               (sponsors.get("leadSponsor") or {}).get("name")),
        collaborators=[ev for c in sponsors.get("collaborators") or []
                       if (ev := _evidence(c.get("name"), c.get("name")))],
        conditions=[ev for c in section.get("conditionsModule", {}).get("conditions") or [] if (ev := _evidence(c, c))],
        interventions=[ev for i in arms.get("interventions") or [] if (ev := _evidence(i.get("name"), i.get("name")))],
        sites=[ev for loc in section.get("contactsLocationsModule", {}).get("locations") or []
               if (ev := _site(loc))],
    )


def _site(location: dict[str, Any]) -> Evidence | None:
    fields = {k: location.get(k) for k in ("facility", "city", "state", "zip", "country") if location.get(k)}
    if not fields:
        return None
    return Evidence(value=fields, text=", ".join(fields.values()))
