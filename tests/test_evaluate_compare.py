"""`trialstruct eval --compare`: two real prompt folders against a scripted OpenAI-wire server on loopback.

The default prompt gets last-word answers, right only for the four "Diagnosis of <condition>"
criteria; the careful variant (a copy of the default prompt with one more instruction) gets every
entity right. On the six gold documents (10 entities, one per criterion, 4 of them Conditions):

- default: 10 predicted Conditions, tp 4, fp 6, fn 6 -> entities F1 8/20 = 0.4; Condition F1 8/14.
- careful: tp 10 -> F1 1.0 everywhere.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Iterator

import pytest

from pipeline.extract.llm import load_prompt
from tests.prompt_eval_fixtures import PromptScriptedServer, careful_variant, trialstruct, write_gold_set

MODEL = "gpt-4o-mini"
PRICES = 'batch_discount = 0.5\n[models."gpt-4o-mini"]\ninput = 1.0\noutput = 4.0\n'


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    root = tmp_path_factory.mktemp("compare")
    write_gold_set(root)
    careful_variant(root, "extract-v2")
    (root / "prices.toml").write_text(PRICES, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIALSTRUCT_", "OPENAI_"))}
    env |= {"OPENAI_API_KEY": "sk-test-compare", "TRIALSTRUCT_CACHE_DIR": str(root / "cache")}
    with PromptScriptedServer() as server:
        yield {"root": root, "server": server, "env": env}


def compare(ws: dict, *variants: str, name: str, check: bool = False):
    root = ws["root"]
    args = ["eval", "--gold", "evals/gold", "--backend", "openai", "--base-url", ws["server"].url, "--model", MODEL,
            "--prices", "prices.toml", "--resamples", "300", "--worst", "3", "--compare-dir", f"out-{name}",
            "--json", f"{name}.json", "--markdown", f"{name}.md", *(["--check"] if check else []), "--compare",
            *variants]
    done = trialstruct(*args, cwd=root, env=ws["env"])
    report = json.loads((root / f"{name}.json").read_text()) if (root / f"{name}.json").exists() else {}
    markdown = (root / f"{name}.md").read_text() if (root / f"{name}.md").exists() else ""
    return done, report, markdown


@pytest.fixture(scope="module")
def forward(workspace: dict):
    from pipeline.config import RunConfig

    return compare(workspace, f"prompt={RunConfig().prompt}", "prompt=prompts/extract-v2", name="forward")


def test_deltas_per_metric_and_type(forward):
    done, report, _ = forward
    assert done.returncode == 0, done.stderr
    [result] = report["comparisons"]
    metrics = result["metrics"]
    relaxed = metrics["entities.relaxed"]
    assert relaxed["base"] == pytest.approx(0.4) and relaxed["other"] == pytest.approx(1.0)
    assert relaxed["delta"] == pytest.approx(0.6)
    low, high = relaxed["interval"]
    assert 0 < low <= 0.6 <= high <= 1.0
    assert metrics["entities.relaxed.Condition"]["base"] == pytest.approx(8 / 14)
    assert metrics["entities.relaxed.Drug"]["delta"] == pytest.approx(1.0)
    assert metrics["entities.relaxed.Measurement"]["significant"] == "better"
    assert metrics["criteria.segmentation"]["delta"] == 0 and metrics["criteria.segmentation"]["group"] == "pipeline"
    assert result["verdict"] == "improvement" and report["verdict"] == "improvement"
    assert result["regressions"] == [] and "entities.relaxed" in result["improvements"]


def test_variants_carry_prompt_identity_tokens_and_cost(forward, workspace):
    _, report, markdown = forward
    base, careful = report["variants"]
    v2 = load_prompt(str(workspace["root"] / "prompts" / "extract-v2"))
    assert careful["run"]["prompt"] == {"name": "extract-v2", "version": "extract-v2", "hash": v2.hash}
    assert base["run"]["prompt"]["hash"] != v2.hash
    served = workspace["server"]
    for variant, careful_prompt in ((base, False), (careful, True)):
        assert served.requests_with(careful_prompt), "every variant reached the server"
        cost = variant["cost"]
        assert cost["documents"] == 6 and cost["input_tokens"] > 0 and cost["output_tokens"] > 0
        expected = (cost["input_tokens"] * 1.0 + cost["output_tokens"] * 4.0) / 1e6
        assert cost["usd"] == pytest.approx(expected)
        assert cost["usd_per_1000_documents"] == pytest.approx(expected / 6 * 1000, rel=1e-4)
        assert cost["usd_batch_per_1000_documents"] == pytest.approx(expected / 6 * 1000 / 2, rel=1e-4)
    assert f"| prompt=prompts/extract-v2 | openai / {MODEL} | extract-v2 ({v2.hash[:12]}) |" in markdown


def test_tokens_are_the_recorded_usage_of_the_answers(forward, workspace):
    _, report, _ = forward
    served = workspace["server"]
    careful_usage = [u for r, u in zip(served.requests, served.served, strict=True)
                     if r in served.requests_with(True)]
    cost = report["variants"][1]["cost"]
    assert cost["input_tokens"] == sum(u["prompt_tokens"] for u in careful_usage)
    assert cost["output_tokens"] == sum(u["completion_tokens"] for u in careful_usage)


def test_markdown_leads_with_the_verdict_and_lists_changed_documents(forward):
    _, report, markdown = forward
    lines = markdown.splitlines()
    assert lines[0] == "## trialstruct eval --compare: IMPROVEMENT"
    assert lines[2].startswith("**prompt=prompts/extract-v2 vs prompt=") and lines[2].endswith(": IMPROVEMENT**")
    assert "| entities.relaxed | 0.400 | 1.000 | +0.600 [" in markdown
    assert "Segmentation and metadata: identical in both" in markdown
    changed = report["comparisons"][0]["changed_documents"]
    assert [(c["doc_id"], round(c["delta"], 3)) for c in changed] == [("d3", 1.0), ("d6", 1.0), ("d1", 0.667)]
    assert "| d3 | 0.000 | 1.000 | +1.000 |" in markdown


def test_review_command_shows_the_changed_documents(forward, workspace):
    _, report, markdown = forward
    command = report["comparisons"][0]["review_command"]
    assert command in markdown
    words = shlex.split(command)
    assert words[:2] == ["trialstruct", "review"]
    done = trialstruct(*words[1:], cwd=workspace["root"], env=workspace["env"])
    assert done.returncode == 0, done.stderr
    page = workspace["root"] / words[words.index("-o") + 1]
    assert page.is_file() and "d3" in page.read_text(encoding="utf-8")
    shown = [json.loads(line)["doc_id"] for line in (workspace["root"] / words[2]).read_text().splitlines()]
    assert shown == ["d3", "d6", "d1"]


def test_reverse_comparison_is_a_regression_from_the_shared_cache(forward, workspace):
    from pipeline.config import RunConfig

    requests_before = len(workspace["server"].requests)
    done, report, markdown = compare(workspace, "prompt=prompts/extract-v2", f"prompt={RunConfig().prompt}",
                                     name="reverse", check=True)
    assert done.returncode == 1, done.stderr
    assert len(workspace["server"].requests) == requests_before  # every answer came from the shared cache
    [result] = report["comparisons"]
    assert result["verdict"] == "regression"
    assert "entities.relaxed" in result["regressions"] and "criteria.segmentation" not in result["regressions"]
    assert markdown.startswith("## trialstruct eval --compare: REGRESSION\n")
    head = markdown.split("### ")[0]
    assert "Regressions (F1 lower" in head and "- `entities.relaxed` 1.000 → 0.400 (-0.600 [" in head


def test_bad_variants_are_one_line_errors(workspace):
    done, _, _ = compare(workspace, "prompt=prompts/extract-v2", name="single")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: --compare needs at least two variants, e.g. --compare "
                                   "prompt=extract-v1 prompt=extract-v2")
    done, _, _ = compare(workspace, "prompt=prompts/extract-v2", "colour=blue", name="unknown")
    assert done.returncode == 2
    assert done.stderr.startswith("error: variant 'colour=blue': unknown setting 'colour'; use config or one of ")
    assert "api_key" not in done.stderr


def test_docs_selects_gold_documents_by_id(workspace):
    root, env = workspace["root"], workspace["env"]
    done = trialstruct("eval", "--gold", "evals/gold", "--backend", "rules", "--docs", "d[12]", "--json", "some.json",
                       "--resamples", "10", cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    assert [d["doc_id"] for d in json.loads((root / "some.json").read_text())["documents"]] == ["d1", "d2"]
    none = trialstruct("eval", "--gold", "evals/gold", "--backend", "rules", "--docs", "zz*", cwd=root, env=env)
    assert none.returncode == 2
    assert none.stderr.strip() == "error: evals/gold: no gold document matches --docs 'zz*'"


def test_help_describes_compare_and_cassettes(workspace):
    done = trialstruct("eval", "--help", cwd=workspace["root"], env={**workspace["env"], "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    for option in ("--compare", "--replay", "--record", "--prices", "--docs", "--baseline-set", "--baseline-key"):
        assert option in done.stdout


def test_backends_compare_too_without_model_calls(workspace):
    root, env = workspace["root"], workspace["env"]
    done = trialstruct("eval", "--gold", "evals/gold", "--compare", "backend=none", "backend=rules", "--json",
                       "backends.json", "--resamples", "100", "--compare-dir", "out-backends", cwd=root, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads((root / "backends.json").read_text())
    none, rules = result["variants"]
    assert none["cost"] is None and none["run"] == {"backend": "none", "model": None, "prompt": None}
    assert rules["run"]["backend"] == "rules" and rules["cost"] is None
    relaxed = result["comparisons"][0]["metrics"]["entities.relaxed"]
    assert relaxed["base"] == 0.0 and relaxed["other"] > 0.5
    assert "| backend=none | none / " in done.stdout and "no model calls" in done.stdout
