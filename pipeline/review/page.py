"""Build the review page: one self-contained HTML file (data, JS and CSS inlined; no network).

The records travel as JSON inside `<script type="application/json">` with every `<` written as
`\\u003c`, so no document text can close the script block; the page script puts text into the DOM
only through text nodes. Runs larger than `per_page` documents get an index page plus one page
per document, so no single file grows without bound; those pages share one copy of the script and
stylesheet (`<stem>_docs/review.js`, `review.css`) instead of inlining them in each page. With gold,
a CSV of every problem (`<stem>-problems.csv`, see `overview.py`) is written beside the page.
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
from pipeline.review.overview import problem_rows, problems_csv
from pipeline.schema import TrialRecord

PER_PAGE = 200
ASSETS = ("review.js", "review.css")


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


def load_comments(folder: Path) -> dict[str, dict[str, Any]]:
    """Reviewer comments saved by `--serve` in `<gold dir>/.comments/`, keyed by doc_id."""
    comments = {}
    for path in sorted((folder / ".comments").glob("*.json")):
        try:
            comment = json.loads(path.read_text(encoding="utf-8"))
            comments[comment["doc_id"]] = comment
        except (ValueError, KeyError, TypeError):
            raise ReviewError(f"{path}: not a reviewer comment (JSON with doc_id and text)") from None
    return comments


def doc_bundle(
    record: TrialRecord, gold: TrialRecord | None, other: TrialRecord | None, comment: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Everything the page needs to show one document."""
    bundle: dict[str, Any] = {
        "record": record.model_dump(mode="json"), "gold": None, "compare": None, "comment": comment,
    }
    if gold is not None:
        bundle["gold"] = {**gold_diff(record, gold), "record": gold.model_dump(mode="json")}
    if other is not None:
        bundle["compare"] = run_diff(record, other)
    return bundle


def _problems(record: TrialRecord, bundle: dict[str, Any]) -> int:
    found = len(record.warnings)
    gold, compare = bundle["gold"], bundle["compare"]
    if gold is not None:
        found += "error" in gold
        found += len(gold.get("problems", []))
    if compare is not None:
        found += "error" in compare
        found += sum(1 for s in compare.get("status", {}).values() if s != "same") + len(compare.get("removed", []))
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
        "problem_kinds": dict(Counter(p["kind"] for p in gold.get("problems", []))) if gold else {},
        "comment": bundle.get("comment"),
        "has_gold": gold is not None,
        "score": gold.get("relaxed") if gold else None,
        "strict": gold.get("strict") if gold else None,
        "compare": compare.get("counts") if compare else None,
    }


def _static(name: str) -> str:
    return resources.files("pipeline.review").joinpath("static", name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def render_page(payload: dict[str, Any], assets: str | None = None) -> str:
    """The HTML text of one page; `payload` is embedded as JSON that cannot break out of its script block.

    With `assets` (a relative folder, e.g. `review_docs/`) the page links the shared `review.js` and
    `review.css` there instead of inlining them; the CSP then allows scripts from the page's own
    origin only (subresource integrity cannot be checked on file:// pages)."""
    data = json.dumps(payload, ensure_ascii=False).replace("<", "\\u003c")
    script = "\n" + _static("review.js") + "\n"
    if assets is None:
        style_tag, script_tag = f"<style>\n{_static('review.css')}\n</style>", f"<script>{script}</script>"
        script_src, style_src = f"'{_sha256(script)}'", "'unsafe-inline'"
    else:
        style_tag = f'<link rel="stylesheet" href="{escape(assets)}review.css">'
        script_tag = f'<script src="{escape(assets)}review.js"></script>'
        script_src = style_src = "'self'"
    parts = {
        "__TITLE__": escape(payload.get("title", "trialstruct review")),
        "__SCRIPT_SRC__": script_src,
        "__STYLE_SRC__": style_src,
        "<!--__STYLE__-->": style_tag,
        "<!--__SCRIPT__-->": script_tag,
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
        "problems": problem_rows(bundles),
        "problems_csv": None,
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
    comments: dict[str, dict[str, Any]] | None = None,
) -> list[Path]:
    """Write the review page(s) and return the files written (index first; then the problems CSV
    when there is gold, the shared assets when there are document pages)."""
    gold, comments = gold or {}, comments or {}
    others = {r.doc_id: r for r in other} if other is not None else {}
    bundles = {
        r.doc_id: doc_bundle(r, gold.get(r.doc_id), others.get(r.doc_id), comments.get(r.doc_id)) for r in records
    }
    title = f"trialstruct review: {output.stem} ({len(records)} documents)"
    output.parent.mkdir(parents=True, exist_ok=True)
    folder = output.parent / f"{output.stem}_docs"
    names = [_page_name(i, r.doc_id) for i, r in enumerate(records)]
    paged = len(records) > per_page
    docs = [
        doc_summary(r, bundles[r.doc_id], f"{folder.name}/{n}" if paged else None)
        for r, n in zip(records, names, strict=True)
    ]
    csv_path = output.with_name(f"{output.stem}-problems.csv") if gold else None
    extra = {"title": title, "problems_csv": csv_path.name if csv_path else None}
    if not paged:
        output.write_text(render_page(page_payload(docs, bundles, **extra)), encoding="utf-8")
        written = [output]
    else:
        folder.mkdir(exist_ok=True)
        index = page_payload(docs, {}, mode="index", problems=problem_rows(bundles), **extra)
        output.write_text(render_page(index, f"{folder.name}/"), encoding="utf-8")
        written = [output, *_write_document_pages(records, bundles, folder, names, output.name, title)]
        for name in ASSETS:
            written.append(folder / name)
            written[-1].write_text(_static(name), encoding="utf-8")
    if csv_path:
        csv_path.write_text(problems_csv(docs, bundles), encoding="utf-8")
        written.append(csv_path)
    return written


def _write_document_pages(
    records: list[TrialRecord], bundles: dict[str, Any], folder: Path, names: list[str], index: str, title: str
) -> list[Path]:
    written = []
    for i, record in enumerate(records):
        nav = {
            "index": f"../{index}",
            "prev": names[i - 1] if i else None,
            "next": names[i + 1] if i + 1 < len(names) else None,
        }
        summary = doc_summary(record, bundles[record.doc_id])
        payload = page_payload([summary], {record.doc_id: bundles[record.doc_id]}, title=title, mode="doc", nav=nav)
        written.append(folder / names[i])
        written[-1].write_text(render_page(payload, ""), encoding="utf-8")
    return written
