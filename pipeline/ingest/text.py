"""Text pages: scraped registry pages and criteria-only texts."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import IngestError
from pipeline.ingest import Document, decode, sha256_text
from pipeline.schema import CriterionKind, Source

# Chia's naming: NCT01234567_inc.txt / NCT01234567_exc.txt hold one criteria list each.
_CRITERIA_ONLY_STEM = re.compile(r"^NCT\d{8}_(inc|exc)$", re.IGNORECASE)


def read_text_document(path: Path, raw: bytes) -> Document | IngestError:
    text = decode(path, raw)
    if isinstance(text, IngestError):
        return text
    source = Source(path=str(path), format="text", sha256=sha256_text(text))
    criteria_only = _CRITERIA_ONLY_STEM.match(path.stem)
    if criteria_only:
        kind: CriterionKind = "inclusion" if criteria_only.group(1).lower() == "inc" else "exclusion"
        return Document(path.stem, source, text, layout="criteria", default_kind=kind)
    return Document(path.stem, source, text, layout="page")
