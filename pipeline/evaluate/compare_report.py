"""The markdown of `eval --compare`, ready to post as a pull-request comment: verdict and regressions first."""

from __future__ import annotations

from typing import Any

from pipeline.evaluate.metrics import ATTRIBUTE_METRICS, ENTITY_TYPES

HEADLINE = ("entities.strict", "entities.relaxed", *ATTRIBUTE_METRICS)
VERDICTS = {"regression": "REGRESSION", "improvement": "IMPROVEMENT", "no significant change": "NO SIGNIFICANT CHANGE"}


def _delta(row: dict[str, Any]) -> str:
    low, high = row["interval"]
    return f"{row['delta']:+.3f} [{low:+.3f}, {high:+.3f}]"


def _mark(row: dict[str, Any]) -> str:
    return {"worse": "worse", "better": "better"}.get(row["significant"] or "", "")


def _metric_rows(comparison: dict[str, Any], names: list[str], label: str | None = None) -> list[str]:
    rows = []
    for name in names:
        row = comparison["metrics"][name]
        if row["items"]:
            shown = label or name
            rows.append(f"| {shown} | {row['base']:.3f} | {row['other']:.3f} | {_delta(row)} | {_mark(row)} |")
    return rows


def _table(comparison: dict[str, Any], names: list[str], first: str, label_of: Any = None) -> list[str]:
    header = [f"| {first} | {comparison['base']} | {comparison['other']} | Δ F1 [paired 95% CI] | significant |",
              "|---|---:|---:|---:|---|"]
    rows = [r for name in names for r in _metric_rows(comparison, [name], label_of(name) if label_of else None)]
    return header + rows if rows else []


def _verdict_lines(comparison: dict[str, Any]) -> list[str]:
    lines = [f"**{comparison['other']} vs {comparison['base']}: {VERDICTS[comparison['verdict']]}**", ""]
    metrics = comparison["metrics"]
    if comparison["regressions"]:
        lines.append("Regressions (F1 lower, the whole paired 95% interval below 0):")
        lines += [f"- `{name}` {metrics[name]['base']:.3f} → {metrics[name]['other']:.3f} ({_delta(metrics[name])})"
                  for name in comparison["regressions"]]
        lines.append("")
    if comparison["improvements"]:
        lines.append("Improvements: " + ", ".join(
            f"`{name}` {_delta(metrics[name])}" for name in comparison["improvements"]))
        lines.append("")
    return lines


def _pipeline_line(comparison: dict[str, Any]) -> str:
    moved = [name for name, row in comparison["metrics"].items() if row["group"] == "pipeline" and row["delta"]]
    if not moved:
        return "Segmentation and metadata: identical in both (deterministic stages; no prompt or model changes them)."
    return ("Segmentation and metadata differ (" + ", ".join(f"`{n}`" for n in moved) + "): these come from the "
            "deterministic stages, so a document failed in one variant; see its prediction errors.")


def _cost_rows(variants: list[dict[str, Any]]) -> list[str]:
    def usd(value: float | None, digits: int) -> str:
        return "unpriced" if value is None else f"${value:.{digits}f}"

    lines = ["| variant | backend / model | prompt (hash) | input tok/doc | output tok/doc | $/doc | $/1,000 docs "
             "| batch $/1,000 docs |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for v in variants:
        run, cost = v["run"], v["cost"]
        prompt = run.get("prompt")
        shown = f"{prompt['name']} ({prompt['hash'][:12]})" if prompt else "—"
        if cost is None:
            lines.append(f"| {v['label']} | {run['backend']} / {run.get('model') or '—'} | {shown} "
                         "| 0 | 0 | no model calls | | |")
            continue
        lines.append(
            f"| {v['label']} | {run['backend']} / {run.get('model') or '—'} | {shown} "
            f"| {cost['input_tokens_per_document']:.0f} | {cost['output_tokens_per_document']:.0f} "
            f"| {usd(cost['usd_per_document'], 5)} | {usd(cost['usd_per_1000_documents'], 2)} "
            f"| {usd(cost['usd_batch_per_1000_documents'], 2)} |")
    return lines


def _changed(comparison: dict[str, Any]) -> list[str]:
    changed = comparison["changed_documents"]
    if not changed:
        return ["No document's entities.relaxed F1 changed."]
    lines = [f"Documents whose entities.relaxed F1 changed most ({comparison['other']} vs {comparison['base']}):", "",
             f"| doc_id | {comparison['base']} | {comparison['other']} | Δ |", "|---|---:|---:|---:|"]
    lines += [f"| {c['doc_id']} | {c['base']:.3f} | {c['other']:.3f} | {c['delta']:+.3f} |" for c in changed]
    return [*lines, "", "See them side by side against gold:", "", "```", comparison["review_command"], "```"]


def _problem_lines(variant: dict[str, Any]) -> list[str]:
    """Failed extractions (scored without entities) apart from documents merely rebuilt from gold text."""
    failed = [p for p in variant["prediction_errors"] if p["problem"].startswith("extraction failed")]
    rebuilt = [p for p in variant["prediction_errors"] if "rebuilt from source_text" in p["problem"]]
    lines = []
    if failed:
        lines.append(f"- {variant['label']}: extraction failed on {len(failed)} document(s), scored without "
                     f"entities; first: {failed[0]['doc_id']}: {failed[0]['problem']}")
    if rebuilt:
        lines.append(f"- {variant['label']}: {len(rebuilt)} document(s) rebuilt from the gold source_text (their "
                     "source files are not here: structured metadata is lost, entities are unaffected)")
    return lines


def comparison_markdown(result: dict[str, Any]) -> str:
    comparisons = result["comparisons"]
    lines = [f"## trialstruct eval --compare: {VERDICTS[result['verdict']]}", ""]
    for comparison in comparisons:
        lines += _verdict_lines(comparison)
    docs = f" matching `{result['docs']}`" if result.get("docs") else ""
    lines += [f"{result['documents']} gold documents{docs} from `{result['gold']}`; Δ = later variant − first, with a "
              f"paired bootstrap 95% interval over documents ({result['bootstrap']['resamples']} resamples).", ""]
    for v in result["variants"]:
        lines += _problem_lines(v)
    for comparison in comparisons:
        lines += ["", f"### {comparison['other']} vs {comparison['base']}", ""]
        lines += _table(comparison, list(HEADLINE), "metric")
        lines += ["", *_table(comparison, [f"entities.relaxed.{t}" for t in ENTITY_TYPES], "entity type (relaxed)",
                              lambda name: name.rsplit(".", 1)[1])]
        lines += ["", _pipeline_line(comparison), "", *_changed(comparison)]
    lines += ["", "### Tokens and cost", "", *_cost_rows(result["variants"])]
    cost = next((v["cost"] for v in result["variants"] if v["cost"]), None)
    if cost:
        as_of = f" (as of {cost['prices_as_of']})" if cost["prices_as_of"] else ""
        lines += ["", "Tokens are those recorded with each cached answer a document used; prices from "
                  f"`{cost['prices']}`{as_of}."]
    return "\n".join(lines) + "\n"
