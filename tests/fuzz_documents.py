"""Generated inputs for every reader and the whole document path (ingest -> segment -> rules extract).

`random_input(rng)` writes one input of any supported format, built from registry-like pieces and
the hostile ones that once sank runs: every line ending, JSON line separators, lone surrogates,
wrong-shaped CT.gov studies, wrong-typed table cells, broken CSV quoting, long and deep lists.
`check_input(path, backend)` reads it and runs every document through the pipeline, collecting
crashes (any exception escaping), inexact spans and the time each document took.

The in-suite tests (tests/test_fuzz_documents.py) drive this through hypothesis for a few seconds;
the long run is a command:

    python -m tests.fuzz_documents --count 20000 --seed 0
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.config import RunConfig
from pipeline.errors import IngestError
from pipeline.extract import Backend, load_backend
from pipeline.ingest import Document, iter_documents
from pipeline.run.runner import process_document

HEADERS = ["Inclusion Criteria:", "Exclusion Criteria:", "INCLUSION CRITERIA", "Key Inclusion Criteria:",
           "Patient Exclusion Criteria:", "Donor Eligibility Criteria:", "Inclusion criteria for Part B:",
           "Subjects will be excluded if:", "Exclusion", "Part A:", "DISEASE CHARACTERISTICS:", "Criteria",
           "Eligibility Criteria", "Inclusion Criteria:1. Age"]
LABELS = ["Overview", "Status:", "Recruiting", "Phase", "Phase:", "Early Phase 1Accepts Healthy Volunteers?",
          "Trial end date:", "2026-09", "Target enrollment:", "0", "Lead Sponsor:", "Study Design",
          "Connect with a study center", "Ages 5-18 All Genders", "NCT01234567", "Details"]
MARKERS = ["1.", "2.", "1)", "(3)", "-", "*", "•", "a)", "ii.", "- 1.", "1000.", "999.", "10.", "(a)", "A."]
WORDS = ["hemoglobin < 80 g/L", "ANC ≥ 1.5 x 10^9/L", "ALT ≤ 2.5 x ULN", "within 4 weeks prior to screening",
         "no live vaccine", "age 18-75 years", "ECOG 0-1", "pregnant or breastfeeding", "cohort (Phase",
         "2 only)", "HIV", "E. coli", "history of", "not", "and/or", "creatinine clearance > 60 mL/min",
         "BMI 18.5–30 kg/m²", "≥", "<", "×10⁹/L", "e.g.", "(see below)", "Note:", "🙂", "é", "\u0301", "\u200b",
         "\u00a0", "\ufeff", "\u202e", "中文", "\t", "  "]
BREAKS = ["\n", "\r\n", "\r", "\n\n", "\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\r\r\n"]


def random_text(rng: random.Random, pieces: int | None = None) -> str:
    """Registry-like text: headers, labels, markers and words joined by every kind of break."""
    parts: list[str] = []
    for _ in range(pieces if pieces is not None else rng.randint(0, 60)):
        roll = rng.random()
        if roll < 0.12:
            parts.append(rng.choice(BREAKS) + rng.choice(HEADERS) + rng.choice(BREAKS))
        elif roll < 0.2:
            parts.append(rng.choice(BREAKS) + rng.choice(LABELS))
        elif roll < 0.45:
            parts.append(rng.choice(BREAKS) + " " * rng.choice([0, 0, 2, 4, 9]) + rng.choice(MARKERS) + " ")
        elif roll < 0.9:
            parts.append(rng.choice(WORDS) + rng.choice([" ", " ", "", ", ", "; ", ". "]))
        else:
            parts.append("".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(1, 8))))
    if rng.random() < 0.05:
        parts.append(_long_list(rng))
    return "".join(parts)


def _long_list(rng: random.Random) -> str:
    count = rng.randint(50, 1_500)
    style = rng.choice(["{i}. item {i}\n", "1. item {i}\n", "{pad}- item {i}\n", "({i}) ANC ≥ {i} x ULN\n"])
    return "\n" + "".join(style.format(i=i, pad="  " * (i % 40)) for i in range(1, count + 1))


def _maybe_surrogate(rng: random.Random, text: str) -> str:
    """Text that may hold a lone surrogate (a reader sees one from a JSON escape such as "\\ud800")."""
    if rng.random() < 0.05 and text:
        at = rng.randint(0, len(text))
        return text[:at] + chr(rng.randint(0xD800, 0xDFFF)) + text[at:]
    return text


def _wrong(rng: random.Random) -> Any:
    return rng.choice([None, 42, 3.5, True, "text", ["a", 1], {"k": "v"}, [], {}, [{"name": 5}]])


def _study(rng: random.Random, index: int) -> Any:
    """A CT.gov study, with any of its parts replaced by a value of the wrong type."""
    modules: dict[str, Any] = {
        "identificationModule": {"nctId": f"NCT{rng.randint(0, 99_999_999):08d}",
                                 "briefTitle": _maybe_surrogate(rng, random_text(rng, 3))},
        "statusModule": {"overallStatus": rng.choice(["RECRUITING", "COMPLETED", "odd"]),
                         "completionDateStruct": {"date": rng.choice(["2026-09", "2027-02-01", "soon"])}},
        "designModule": {"phases": rng.choice([["PHASE2"], ["PHASE1", "PHASE2"], "PHASE2", []]),
                         "enrollmentInfo": {"count": rng.choice([0, 30, "30", None])}},
        "eligibilityModule": {"eligibilityCriteria": _maybe_surrogate(rng, random_text(rng)),
                              "sex": "ALL", "minimumAge": "18 Years", "healthyVolunteers": rng.random() < 0.5},
        "sponsorCollaboratorsModule": {"leadSponsor": {"name": "Acme"}, "collaborators": [{"name": "Beta"}]},
        "conditionsModule": {"conditions": ["asthma", "COPD"]},
        "armsInterventionsModule": {"interventions": [{"name": "drug X"}]},
        "contactsLocationsModule": {"locations": [{"facility": "Site", "city": "Paris", "country": "France"}]},
    }
    for name in list(modules):
        if rng.random() < 0.08:
            modules[name] = _wrong(rng)
        elif rng.random() < 0.08 and isinstance(modules[name], dict) and modules[name]:
            modules[name][rng.choice(list(modules[name]))] = _wrong(rng)
    return {"protocolSection": modules} if rng.random() > 0.03 else _wrong(rng)


def _row(rng: random.Random, index: int) -> dict[str, Any]:
    row: dict[str, Any] = {"nct_id": f"NCT{index:08d}", "criteria": _maybe_surrogate(rng, random_text(rng)),
                           "phase": rng.choice(["Phase 2", "PHASE1/PHASE2", "", "N/A"]),
                           "diseases": rng.choice(["['asthma']", "asthma|copd", ""]), "status": "Recruiting"}
    for key in list(row):
        if rng.random() < 0.05:
            row[key] = _wrong(rng)
    return row


def _csv_cell(rng: random.Random, value: Any) -> str:
    text = "" if value is None else str(value)
    roll = rng.random()
    if roll < 0.02:
        return '"' + text  # an unterminated quote
    if roll < 0.04:
        return text + ',"stray'  # an extra field
    return '"' + text.replace('"', '""') + '"'


def random_input(rng: random.Random) -> tuple[str, bytes]:
    """(file name, bytes) of one input in a random format."""
    kind = rng.choice(["page", "criteria", "ctgov", "jsonl", "csv"])
    if kind == "page":
        return "page.txt", _maybe_surrogate(rng, random_text(rng)).encode("utf-8", "surrogatepass")
    if kind == "criteria":
        return "NCT01234567_exc.txt", random_text(rng).encode("utf-8")
    count = rng.randint(1, 3)
    if kind == "ctgov":
        studies = [_study(rng, i) for i in range(count)]
        return "studies.json", json.dumps(studies if count > 1 else studies[0]).encode("ascii")
    rows = [_row(rng, i) for i in range(count)]
    if kind == "jsonl":
        lines = [json.dumps(row, ensure_ascii=rng.random() < 0.5) for row in rows]
        return "rows.jsonl", "\n".join(lines).encode("utf-8", "surrogatepass")
    header = ",".join(rows[0])
    lines = [",".join(_csv_cell(rng, value) for value in row.values()) for row in rows]
    return "rows.csv", rng.choice(["\n", "\r\n", "\r"]).join([header, *lines]).encode("utf-8", "surrogatepass")


@dataclass
class Findings:
    inputs: int = 0
    documents: int = 0
    ingest_errors: int = 0
    crashes: list[str] = field(default_factory=list)
    inexact: list[str] = field(default_factory=list)
    slowest: float = 0.0  # CPU seconds of the slowest document (wall time varies with the machine's load)
    slowest_input: str = ""
    slowest_wall: float = 0.0

    def add(self, other: Findings) -> None:
        self.inputs += other.inputs
        self.documents += other.documents
        self.ingest_errors += other.ingest_errors
        self.crashes += other.crashes
        self.inexact += other.inexact
        if other.slowest > self.slowest:
            self.slowest, self.slowest_input = other.slowest, other.slowest_input
        self.slowest_wall = max(self.slowest_wall, other.slowest_wall)


def rules_backend() -> Backend:
    return load_backend(RunConfig(backend="rules"))


def check_input(path: Path, backend: Backend) -> Findings:
    """Read `path` and run each document through segmentation and extraction; nothing may escape."""
    found = Findings(inputs=1)
    try:
        items = list(iter_documents([path]))
    except Exception:
        found.crashes.append(f"ingest: {traceback.format_exc(limit=-3)}")
        return found
    for item in items:
        if isinstance(item, IngestError):
            found.ingest_errors += 1
            if "\n" in str(item):
                found.crashes.append(f"ingest error spans lines: {str(item)[:200]!r}")
            continue
        found.documents += 1
        _check_document(item, backend, found)
    return found


def _check_document(document: Document, backend: Backend, found: Findings) -> None:
    started, started_wall = time.thread_time(), time.perf_counter()
    try:
        record, _ = process_document(document, backend)
        record.model_dump_json()
    except Exception:
        found.crashes.append(f"{document.doc_id}: {traceback.format_exc(limit=-3)}")
        return
    finally:
        elapsed = time.thread_time() - started
        if elapsed > found.slowest:
            found.slowest, found.slowest_input = elapsed, document.doc_id
        found.slowest_wall = max(found.slowest_wall, time.perf_counter() - started_wall)
    for where, span in record.spans():
        if span.start is not None and record.source_text[span.start:span.end] != span.text:
            found.inexact.append(f"{document.doc_id} {where}")


def run(count: int, seed: int, keep: Path | None = None) -> Findings:
    """Generate inputs until `count` documents went through the whole path."""
    backend = rules_backend()
    rng = random.Random(seed)
    total = Findings()
    with tempfile.TemporaryDirectory() as scratch:
        while total.documents < count:
            name, content = random_input(rng)
            path = Path(scratch) / name
            path.write_bytes(content)
            found = check_input(path, backend)
            if (found.crashes or found.inexact) and keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                (keep / f"{total.inputs:06d}-{name}").write_bytes(content)
            if found.slowest > total.slowest:
                found.slowest_input = f"input {total.inputs} ({name}), {found.slowest_input}"
            total.add(found)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=20_000, help="documents to run through the whole path")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write inputs that crash or misplace a span here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    found = run(args.count, args.seed, args.keep)
    rows = [("inputs", found.inputs), ("documents", found.documents), ("ingest errors", found.ingest_errors),
            ("crashes", len(found.crashes)), ("inexact spans", len(found.inexact)),
            ("slowest document, CPU s", f"{found.slowest:.3f}  [{found.slowest_input}]"),
            ("slowest document, wall s", f"{found.slowest_wall:.3f}"),
            ("total seconds", f"{time.perf_counter() - started:.1f}")]
    for name, value in rows:
        print(f"{name:<25} {value}")
    for crash in found.crashes[:5]:
        print("crash:", crash, file=sys.stderr)
    return 1 if found.crashes or found.inexact else 0


if __name__ == "__main__":
    sys.exit(main())
