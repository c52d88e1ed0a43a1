"""Build the review page: one self-contained HTML file (data, JS and CSS inlined; no network).

The records travel as JSON inside `<script type="application/json">` with every `<` written as
`\\u003c`, so no document text can close the script block; the page script puts text into the DOM
only through text nodes. Runs larger than `per_page` documents get an index page plus one page
per document, so no single file grows without bound.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import Counter
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline.errors import EvaluateError, ReviewError
from pipeline.evaluate.records import iter_record_lines, read_record_files
from pipeline.review.diff import gold_diff, run_diff
from pipeline.schema import TrialRecord

PER_PAGE = 200



def load_records(path: Path) -> list[TrialRecord]:
    """Records of a run: OUTDIR/records.jsonl, or a .jsonl file given directly."""
    file = path / "records.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise ReviewError(f"{file}: no such file (expected a run directory holding records.jsonl)")
    try:
        return [record for _, record in iter_record_lines(file)]
    except EvaluateError as exc:
        raise ReviewError(str(exc)) from None


def load_gold(folder: Path) -> dict[str, TrialRecord]:
    """Gold records of a folder of `<doc_id>.json` files, keyed by doc_id."""
    if not folder.is_dir():
        raise ReviewError(f"{folder}: gold directory does not exist")
    try:
        return {record.doc_id: record for record in read_record_files(folder)}
    except EvaluateError as exc:
        raise ReviewError(str(exc)) from None


def doc_bundle(record: TrialRecord, gold: TrialRecord | None, other: TrialRecord | None) -> dict[str, Any]:
    """Everything the page needs to show one document."""
    bundle: dict[str, Any] = {"record": record.model_dump(mode="json"), "gold": None, "compare": None}
    if gold is not None:
        bundle["gold"] = {**gold_diff(record, gold), "record": gold.model_dump(mode="json")}
    if other is not None:
        bundle["compare"] = run_diff(record, other)
    return bundle


def _problems(record: TrialRecord, bundle: dict[str, Any]) -> int:
    found = len(record.warnings)
    for part in (bundle["gold"], bundle["compare"]):
        if part is None:
            continue
        found += "error" in part
        found += sum(1 for s in part.get("status", {}).values() if s not in ("tp", "same"))
        found += len(part.get("missed", [])) + len(part.get("removed", []))
    return found


def doc_summary(record: TrialRecord, bundle: dict[str, Any], href: str | None = None) -> dict[str, Any]:
    """The line of the document list: counts, warnings, scores, and where the full document lives."""
    title = record.trial.title.text if record.trial.title else ""
    gold, compare = bundle["gold"], bundle["compare"]
    return {
        "doc_id": record.doc_id,
        "title": title,
        "format": record.source.format,
        "href": href,
        "n_criteria": len(record.criteria),
        "n_entities": len(record.entities()),
        "types": dict(Counter(str(e.type) for e in record.entities())),
        "kinds": dict(Counter(c.kind for c in record.criteria)),
        "warnings": len(record.warnings),
        "problems": _problems(record, bundle),
        "has_gold": gold is not None,
        "score": gold.get("relaxed") if gold else None,
        "strict": gold.get("strict") if gold else None,
        "compare": compare.get("counts") if compare else None,
    }


def _static(name: str) -> str:
    return resources.files("pipeline.review").joinpath("static", name).read_text(encoding="utf-8")


def render_page(payload: dict[str, Any]) -> str:
    """The HTML text of one page; `payload` is embedded as JSON that cannot break out of its script block."""
    data = json.dumps(payload, ensure_ascii=False).replace("<", "\\u003c")
    script = "\n" + _static("review.js") + "\n"
    digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")
    parts = {
        "__TITLE__": escape(payload.get("title", "trialstruct review")),
        "__SCRIPT_SRC__": f"'sha256-{digest}'",
        "/*__CSS__*/": _static("review.css"),
        "\n/*__JS__*/\n": script,
        "__DATA__": data,
    }
    html = _static("template.html")
    return re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)], html)


def page_payload(docs: list[dict[str, Any]], bundles: dict[str, Any], **extra: Any) -> dict[str, Any]:
    payload = {
        "title": "trialstruct review",
        "mode": "single",
        "editable": False,
        "api": False,
        "token": None,
        "nav": {},
        "docs": docs,
        "bundles": bundles,
        "has_gold": any(d["has_gold"] for d in docs),
        "has_compare": any(d["compare"] is not None for d in docs),
    }
    payload.update(extra)
    return payload


def _page_name(index: int, doc_id: str) -> str:
    return f"{index:05d}-{re.sub(r'[^A-Za-z0-9._-]', '_', doc_id)[:80]}.html"


def write_review(
    records: list[TrialRecord],
    output: Path,
    gold: dict[str, TrialRecord] | None = None,
    other: list[TrialRecord] | None = None,
    per_page: int = PER_PAGE,
) -> list[Path]:
    """Write the review page(s) and return the files written (index first)."""
    gold = gold or {}
    others = {r.doc_id: r for r in other} if other is not None else {}
    bundles = {r.doc_id: doc_bundle(r, gold.get(r.doc_id), others.get(r.doc_id)) for r in records}
    title = f"trialstruct review: {output.stem} ({len(records)} documents)"
    output.parent.mkdir(parents=True, exist_ok=True)
    if len(records) <= per_page:
        docs = [doc_summary(r, bundles[r.doc_id]) for r in records]
        output.write_text(render_page(page_payload(docs, bundles, title=title)), encoding="utf-8")
        return [output]
    folder = output.parent / f"{output.stem}_docs"
    folder.mkdir(exist_ok=True)
    names = [_page_name(i, r.doc_id) for i, r in enumerate(records)]
    docs = [doc_summary(r, bundles[r.doc_id], f"{folder.name}/{n}") for r, n in zip(records, names, strict=True)]
    output.write_text(render_page(page_payload(docs, {}, title=title, mode="index")), encoding="utf-8")
    written = [output]
    for i, record in enumerate(records):
        nav = {
            "index": f"../{output.name}",
            "prev": names[i - 1] if i else None,
            "next": names[i + 1] if i + 1 < len(names) else None,
        }
        summary = doc_summary(record, bundles[record.doc_id])
        payload = page_payload([summary], {record.doc_id: bundles[record.doc_id]}, title=title, mode="doc", nav=nav)
        written.append(folder / names[i])
        written[-1].write_text(render_page(payload), encoding="utf-8")
    return written
