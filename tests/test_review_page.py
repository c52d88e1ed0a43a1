"""The review page builder and its diffs, without a browser (the browser tests are in test_review_browser.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.errors import ReviewError
from pipeline.review.diff import gold_diff, run_diff
from pipeline.review.page import load_gold, load_records, write_review
from tests.review_fixtures import TRIAL_A, gold_for_a, other_run_a, review_inputs, sample_records, write_jsonl

DATA_BLOCK = re.compile(r'<script type="application/json" id="review-data">(.*?)</script>', re.S)


def embedded(html: str) -> dict:
    return json.loads(DATA_BLOCK.search(html).group(1))


def by_text(record, status: dict) -> dict[str, str]:
    return {e.text: status[e.id] for e in record.entities()}


def test_gold_diff_marks_tp_partial_fp_and_misses():
    run = sample_records()[0]
    diff = gold_diff(run, gold_for_a(run))
    status = by_text(run, diff["status"])
    assert status["Prior treatment"] == "fp"
    assert status["Adults"] == "partial"
    adults = next(e.id for e in run.entities() if e.text == "Adults")
    assert [(g["text"], g["criterion"]) for g in diff["partial"].values()] == [("Adult", "inc-1")]
    assert diff["partial"][adults]["end"] - diff["partial"][adults]["start"] == 5
    assert [s for t, s in status.items() if t not in ("Prior treatment", "Adults")] == ["tp"] * 12
    assert [(m["type"], m["text"], m["criterion"]) for m in diff["missed"]] == [("Visit", "first dose", "exc-1")]
    assert (diff["strict"]["tp"], diff["strict"]["fp"], diff["strict"]["fn"]) == (12, 2, 2)
    assert (diff["relaxed"]["tp"], diff["relaxed"]["fp"], diff["relaxed"]["fn"]) == (13, 1, 1)


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
    [page] = write_review(records, tmp_path / "review.html", load_gold(paths["gold"]), load_records(paths["other"]))
    html = page.read_text(encoding="utf-8")
    data = embedded(html)
    assert [d["doc_id"] for d in data["docs"]] == ["NCT-A", "NCT-B", "probe-xss"]
    for record in records:
        assert data["bundles"][record.doc_id]["record"] == record.model_dump(mode="json")
    assert data["docs"][0]["score"]["f1"] == pytest.approx(13 / 14)
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


def test_large_run_gets_an_index_and_one_page_per_document(tmp_path):
    records = sample_records()
    written = write_review(records, tmp_path / "out" / "review.html", per_page=2)
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
