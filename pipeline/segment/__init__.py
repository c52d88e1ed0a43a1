"""Segment: a `Document` becomes a `TrialRecord` with metadata and criteria, deterministically.

No model is involved: the same text always gives the same criteria, ids and offsets.
"""

from __future__ import annotations

import re

from pipeline import __version__
from pipeline.ingest import Document
from pipeline.schema import Provenance, TrialRecord
from pipeline.segment.criteria import split_criteria
from pipeline.segment.page import parse_page


def segment(document: Document) -> TrialRecord:
    text = document.source_text
    warnings = list(document.warnings)
    trial = document.trial.model_copy(deep=True)
    start, end = document.criteria_start, len(text)
    if document.layout == "page":
        page = parse_page(text)
        start, end = page.criteria_start, page.criteria_end
        warnings.extend(page.warnings)
        trial = page.trial
    section = split_criteria(text, start, end, document.default_kind,
                             one_per_line=document.layout == "criteria" and document.source.format == "text")
    warnings.extend(section.warnings)
    if not section.criteria:
        warnings.append("no eligibility criteria found")
        if (mention := _CRITERIA_LIKE.search(text)) is not None:
            warnings.append(f"no criteria read, though the text mentions them at offset {mention.start()} "
                            f"({_line_at(text, mention.start())!r}): an unrecognised header or layout?")
    doc_id = document.doc_id
    if document.layout == "page" and trial.nct_id is not None:
        doc_id = trial.nct_id.value
    return TrialRecord(
        doc_id=doc_id,
        source=document.source,
        source_text=text,
        warnings=warnings,
        trial=trial,
        criteria=section.criteria,
        provenance=Provenance(pipeline_version=__version__),
    )


_CRITERIA_LIKE = re.compile(r"(?i)\b(?:inclusion|exclusion|eligibility|eligible)\b|\bcriteri(?:a|on)\b")


def _line_at(text: str, position: int) -> str:
    """The line around `position`, shortened for a warning."""
    start = max(text.rfind("\n", 0, position), text.rfind("\r", 0, position)) + 1
    end = min((i for i in (text.find("\n", position), text.find("\r", position)) if i != -1), default=len(text))
    line = text[start:end].strip()
    return line if len(line) <= 80 else line[:77] + "..."
