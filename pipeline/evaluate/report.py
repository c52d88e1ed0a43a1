"""Presenting a report: a rich table for the terminal, JSON and markdown files.

Rows with no items on either side (e.g. a metadata field nobody filled) are left out of the
table and markdown to keep them readable; the JSON report always carries every metric.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.files import atomic_write

HEADERS = ("metric", "P", "R", "F1", "F1 95% CI", "macro F1", "tp", "fp", "fn")


def _rows(report: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for name, m in report["metrics"].items():
        if m["tp"] + m["fp"] + m["fn"] == 0:
            continue
        low, high = report["intervals"].get(name, {}).get("f1", [m["f1"], m["f1"]])
        macro_f1 = report["macro"].get(name, {}).get("f1", m["f1"])
        rows.append((
            name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}",
            f"{low:.3f}–{high:.3f}", f"{macro_f1:.3f}", str(m["tp"]), str(m["fp"]), str(m["fn"]),
        ))
    return rows


def _run_line(report: dict[str, Any]) -> list[str]:
    run = report.get("run")
    if not run:
        return []
    prompt = run.get("prompt")
    shown = f", prompt {prompt['name']} (version {prompt['version']}, hash {prompt['hash'][:12]})" if prompt else ""
    return [f"backend {run['backend']}, model {run.get('model') or '-'}{shown}"]


def _cost_line(report: dict[str, Any]) -> list[str]:
    cost = report.get("cost")
    if not cost:
        return []
    tokens = (f"tokens per document: {cost['input_tokens_per_document']:.0f} in, "
              f"{cost['output_tokens_per_document']:.0f} out")
    if cost["usd"] is None:
        return [f"{tokens}; cost unknown (no price for model {cost['model']!r} in {cost['prices']})"]
    return [f"{tokens}; cost ${cost['usd_per_document']:.5f} per document, ${cost['usd_per_1000_documents']:.2f} "
            f"per 1,000 documents (${cost['usd_batch_per_1000_documents']:.2f} with the batch API)"]


GATE_VERDICTS = {"passed": "PASSED", "failed": "FAILED", "stale": "FAILED (recording stale)",
                 "incomplete": "FAILED (recording incomplete)"}


def _gate_lines(report: dict[str, Any]) -> list[str]:
    """The gate's verdict and, when it failed, every line it failed with (for the top of the markdown)."""
    gate = report.get("gate")
    if not gate:
        return []
    lines = [f"**Gate: {GATE_VERDICTS[gate['verdict']]}** against `{gate['baseline']}` section `{gate['key']}`", ""]
    if gate["verdict"] != "passed":
        lines += [f"- {line}" for line in gate["lines"]] + [""]
    return lines


def _described(report: dict[str, Any]) -> list[str]:
    """What was scored (backend, model, prompt), its cost, then the summary."""
    return [*_run_line(report), *_cost_line(report), *_summary_lines(report)]


def _summary_lines(report: dict[str, Any]) -> list[str]:
    lines = [f"documents scored: {report['documents_scored']}"]
    if report.get("in_sample"):
        lines.insert(0, f"WARNING {report['in_sample']['warning']}")
    for key, label in (("missing_documents", "missing predictions (all fn)"),
                       ("text_mismatch", "source_text differs from gold"),
                       ("extra_predictions", "predictions without gold (ignored)")):
        if report.get(key):
            lines.append(f"{label}: {', '.join(report[key])}")
    problems = report.get("prediction_errors", [])
    lines += [f"{p['doc_id']}: {p['problem']}" for p in problems[:10]]
    if len(problems) > 10:
        lines.append(f"... and {len(problems) - 10} more problems (see the JSON report)")
    if "offset_errors" in report:
        lines.append(f"corpus offset errors skipped: {len(report['offset_errors'])}")
    for mode in ("strict", "relaxed"):
        m = report["macro"].get(f"entities.{mode}.types")
        if m and m["n"]:
            lines.append(f"entities.{mode} macro over {m['n']} types: F1 {m['f1']:.3f}")
    return lines


def print_report(report: dict[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    rows = _rows(report)
    table = Table(title="trialstruct eval", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(HEADERS[0], no_wrap=True, min_width=max((len(r[0]) for r in rows), default=6))
    for header in HEADERS[1:]:
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for line in _described(report):
        console.print(line, highlight=False)
    for w in report.get("worst_documents", []):
        note = " (no prediction)" if w["missing"] else ""
        console.print(f"worst: {w['doc_id']} entities.relaxed F1 {w['f1']:.3f} fp {w['fp']} fn {w['fn']}{note}",
                      highlight=False)


def to_markdown(report: dict[str, Any]) -> str:
    lines = ["# trialstruct evaluation", "", *_gate_lines(report)]
    lines += [f"- {line}" for line in _described(report)]
    lines += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(report)]
    worst = report.get("worst_documents", [])
    if worst:
        lines += ["", "## Worst documents (entities.relaxed)", ""]
        lines += ["| doc_id | F1 | tp | fp | fn |", "|---|---|---|---|---|"]
        lines += [f"| {w['doc_id']} | {w['f1']:.3f} | {w['tp']} | {w['fp']} | {w['fn']} |" for w in worst]
    return "\n".join(lines) + "\n"


def write_json(path: Path, report: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    atomic_write(path, to_markdown(report))
