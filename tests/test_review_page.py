"""The review page builder and its diffs, without a browser (the browser tests are in test_review_browser.py)."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ReviewError
from pipeline.review.diff import gold_diff, run_diff
from pipeline.review.page import load_gold, load_records, write_review
from pipeline.schema import TrialRecord
from tests.review_fixtures import TRIAL_A, gold_for_a, other_run_a, review_inputs, sample_records, write_jsonl

DATA_BLOCK = re.compile(r'<script type="application/json" id="review-data">(.*?)</script>', re.S)


def embedded(html: str) -> dict:
    return json.loads(DATA_BLOCK.search(html).group(1))


def by_text(record, status: dict) -> dict[str, str]:
    return {e.text: status[e.id] for e in record.entities()}


def test_gold_diff_marks_each_kind_of_disagreement():
    run = sample_records()[0]
    diff = gold_diff(run, gold_for_a(run))
    status = by_text(run, diff["status"])
    assert status["Prior treatment"] == "fp"
    assert status["Adults"] == "partial"
    assert status["breastfeeding"] == "type"
    assert status["hemoglobin"] == status["EGFR inhibitor"] == "attr"
    assert sorted(t for t, s in status.items() if s == "tp") == sorted(
        ["aged 18 years or older", "non-small cell lung cancer", "lung cancer", "ECOG performance status",
         "Active hepatitis B", "hepatitis B or hepatitis C infection", "hepatitis C", "Pregnant", "women"]
    )
    ids = {e.text: e.id for e in run.entities()}
    assert diff["counterpart"][ids["Adults"]]["text"] == "Adult"
    assert diff["counterpart"][ids["Adults"]]["end"] - diff["counterpart"][ids["Adults"]]["start"] == 5
    assert diff["counterpart"][ids["breastfeeding"]]["type"] == "Condition"
    assert diff["counterpart"][ids["hemoglobin"]]["value"]["low"] == 10.0
    assert diff["differs"] == {ids["hemoglobin"]: ["values"], ids["EGFR inhibitor"]: ["temporal"]}
    assert [(m["type"], m["text"], m["criterion"]) for m in diff["missed"]] == [("Visit", "first dose", "exc-1")]
    assert (diff["strict"]["tp"], diff["strict"]["fp"], diff["strict"]["fn"]) == (11, 3, 3)
    assert (diff["relaxed"]["tp"], diff["relaxed"]["fp"], diff["relaxed"]["fn"]) == (12, 2, 2)
    at = {t: TRIAL_A.index(t) for t in ("Adults", "Prior treatment", "first dose")}
    rows = [(p["kind"], p["text"], p["run"], p["gold"]) for p in diff["problems"]]
    assert rows == [
        ("span", "Adults", f"“Adults” {at['Adults']}–{at['Adults'] + 6}", f"“Adult” {at['Adults']}–{at['Adults'] + 5}"),
        ("values", "hemoglobin", ">= 9–? g/dL “>= 9 g/dL”", ">= 10–? g/dL “>= 9 g/dL”"),
        ("fp", "Prior treatment", f"“Prior treatment” {at['Prior treatment']}–{at['Prior treatment'] + 15}", ""),
        ("temporal", "EGFR inhibitor", "before first_dose 0–28 days “within 28 days before the first dose”", "none"),
        ("miss", "first dose", "", f"“first dose” {at['first dose']}–{at['first dose'] + 10}"),
        ("type", "breastfeeding", "Observation", "Condition"),
    ]


def test_gold_diff_finds_every_attribute_the_scorer_compares():
    run = sample_records()[1]
    gold = run.model_dump(mode="json")
    gold["criteria"][3]["entities"][0]["negated"] = False
    diff = gold_diff(run, TrialRecord.model_validate(gold))
    assert diff["status"]["exc-1.e1"] == "attr" and diff["differs"] == {"exc-1.e1": ["negation"]}
    assert [(p["kind"], p["run"], p["gold"]) for p in diff["problems"]] == [("negation", "negated", "not negated")]
    assert gold_diff(run, run)["problems"] == [] and set(gold_diff(run, run)["status"].values()) == {"tp"}


def test_gold_diff_refuses_a_different_source_text():
    a, b = sample_records()[:2]
    assert "different source text" in gold_diff(a, b.model_copy(update={"doc_id": a.doc_id}))["error"]


def test_run_diff_reports_added_removed_and_changed():
    run = sample_records()[0]
    diff = run_diff(run, other_run_a(run))
    status = by_text(run, diff["status"])
    assert status["women"] == "added"
    assert status["Pregnant"] == "changed"
    pregnant = next(e.id for e in run.entities() if e.text == "Pregnant")
    assert diff["changes"][pregnant] == {"negated": [True, False]}
    assert [(r["type"], r["text"]) for r in diff["removed"]] == [("Device", "dL")]
    assert diff["counts"] == {"added": 1, "changed": 1, "same": 12, "removed": 1}


def test_page_is_self_contained_and_embeds_every_record(tmp_path):
    paths = review_inputs(tmp_path)
    records = load_records(paths["run"])
    gold, other = load_gold(paths["gold"]), load_records(paths["other"])
    page, csv_file = write_review(records, tmp_path / "review.html", gold, other)
    assert csv_file == tmp_path / "review-problems.csv"
    html = page.read_text(encoding="utf-8")
    data = embedded(html)
    assert [d["doc_id"] for d in data["docs"]] == ["NCT-A", "NCT-B", "probe-xss"]
    for record in records:
        assert data["bundles"][record.doc_id]["record"] == record.model_dump(mode="json")
    assert data["docs"][0]["score"]["f1"] == pytest.approx(12 / 14)
    assert data["docs"][0]["compare"] == {"added": 1, "changed": 1, "same": 12, "removed": 1}
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html


def test_probe_text_cannot_open_a_script_and_only_the_page_script_may_run(tmp_path):
    records = sample_records()
    [page] = write_review(records, tmp_path / "review.html")
    html = page.read_text(encoding="utf-8")
    assert html.count("<script") == 2
    assert "window.__pwned" not in html.replace("window.\\u005f", "")[: html.index("review-data")]
    assert embedded(html)["bundles"]["probe-xss"]["record"]["source_text"] == records[2].source_text
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in html


def test_problems_csv_has_one_row_per_problem_with_the_document_score_and_comment(tmp_path):
    paths = review_inputs(tmp_path)
    comments = {"NCT-A": {"doc_id": "NCT-A", "text": "values, not spans", "reviewer": "Ada", "date": "2026-11-28"}}
    gold = load_gold(paths["gold"])
    written = write_review(load_records(paths["run"]), tmp_path / "r.html", gold, comments=comments)
    with written[-1].open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    expected = gold_diff(sample_records()[0], gold["NCT-A"])["problems"]
    assert [(r["kind"], r["text"], r["run"], r["gold"]) for r in rows] == [
        (p["label"], p["text"], p["run"], p["gold"]) for p in expected
    ]
    assert {r["doc_id"] for r in rows} == {"NCT-A"} and {r["comment"] for r in rows} == {"values, not spans"}
    assert {r["doc_f1"] for r in rows} == {f"{12 / 14:.4f}"}
    assert sorted({r["kind"] for r in rows}) == ["false positive", "miss", "span", "time window", "type", "value"]
    assert embedded(written[0].read_text(encoding="utf-8"))["problems_csv"] == "r-problems.csv"


def test_document_pages_share_one_copy_of_the_script_and_stylesheet(tmp_path):
    written = write_review(sample_records(), tmp_path / "review.html", per_page=2)
    assets = [p for p in written if p.suffix in (".js", ".css")]
    assert sorted(p.name for p in assets) == ["review.css", "review.js"]
    script = assets[[p.name for p in assets].index("review.js")].read_text(encoding="utf-8")
    pages = [p for p in written if p.suffix == ".html"]
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert script[200:400] not in html and "<style>" not in html
        assert len(html) < len(script)
        assert html.count("review.js\"></script>") == 1 and "script-src 'self'" in html
    inline = write_review(sample_records(), tmp_path / "single.html")[0].read_text(encoding="utf-8")
    assert script[200:400] in inline


def test_large_run_gets_an_index_and_one_page_per_document(tmp_path):
    records = sample_records()
    written = [p for p in write_review(records, tmp_path / "out" / "review.html", per_page=2) if p.suffix == ".html"]
    assert len(written) == 4
    index = embedded(written[0].read_text(encoding="utf-8"))
    assert index["mode"] == "index" and index["bundles"] == {}
    assert [(tmp_path / "out" / d["href"]).resolve() for d in index["docs"]] == [p.resolve() for p in written[1:]]
    middle = embedded(written[2].read_text(encoding="utf-8"))
    assert list(middle["bundles"]) == ["NCT-B"]
    assert middle["nav"] == {"index": "../review.html", "prev": written[1].name, "next": written[3].name}


def test_bad_records_line_is_named(tmp_path):
    path = write_jsonl(tmp_path / "run", sample_records()[:1])
    bad = json.loads(path.read_text().splitlines()[0])
    bad["criteria"][0]["entities"][0]["end"] += 1
    path.write_text(path.read_text() + json.dumps(bad) + "\n")
    with pytest.raises(ReviewError, match=r"records\.jsonl:2: not a valid TrialRecord"):
        load_records(tmp_path / "run")


def test_bad_gold_file_is_named(tmp_path):
    (tmp_path / "NCT-A.json").write_text('{"doc_id": "NCT-A"}')
    with pytest.raises(ReviewError, match=r"NCT-A\.json: not a valid TrialRecord"):
        load_gold(tmp_path)


def test_cli_writes_the_page_and_reports_bad_input(tmp_path):
    paths = review_inputs(tmp_path)
    out = tmp_path / "r.html"
    args = ["review", str(paths["run"]), "-o", str(out), "--gold", str(paths["gold"]), "--compare", str(paths["other"])]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert embedded(out.read_text(encoding="utf-8"))["docs"][0]["has_gold"] is True
    result = CliRunner().invoke(app, ["review", str(tmp_path / "missing")])
    assert result.exit_code == 2
    assert "missing: no such file (expected a run directory holding records.jsonl)" in result.output


def test_trial_text_fixture_offsets_are_exact():
    record = sample_records()[0]
    assert record.source_text == TRIAL_A
    assert all(TRIAL_A[e.start : e.end] == e.text for e in record.entities())


def test_cli_shows_reviewer_comments_saved_beside_gold(tmp_path):
    paths = review_inputs(tmp_path)
    (paths["gold"] / ".comments").mkdir()
    comment = {"doc_id": "NCT-A", "text": "check the TB clause", "reviewer": "Ada", "date": "2026-11-28"}
    (paths["gold"] / ".comments" / "NCT-A.json").write_text(json.dumps(comment), encoding="utf-8")
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["review", str(paths["run"]), "-o", str(out), "--gold", str(paths["gold"])])
    assert result.exit_code == 0, result.output
    assert f"problems: {tmp_path / 'r-problems.csv'}" in result.output
    data = embedded(out.read_text(encoding="utf-8"))
    assert data["bundles"]["NCT-A"]["comment"] == comment and data["docs"][0]["comment"] == comment
    (paths["gold"] / ".comments" / "NCT-A.json").write_text("{", encoding="utf-8")
    result = CliRunner().invoke(app, ["review", str(paths["run"]), "-o", str(out), "--gold", str(paths["gold"])])
    assert result.exit_code == 2 and "NCT-A.json: not a reviewer comment" in result.output
