"""The review page in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no downloads).

Screenshots land in test-artifacts/. With TRIALSTRUCT_UPDATE_DOCS=1 the ones the README shows are
also copied to docs/ (a test run never changes the repository otherwise).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.review.page import load_gold, load_records, write_review
from pipeline.review.server import ReviewHTTPServer
from pipeline.schema import TrialRecord
from tests.conftest import REPO
from tests.review_fixtures import review_inputs, running_review_server, sample_records, write_gold

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright for Python is not installed")
CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} not found (Debian: apt-get install chromium)", allow_module_level=True)

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "test-artifacts"


def to_docs(screenshot: Path, name: str) -> None:
    """Refresh a README screenshot, only when asked (TRIALSTRUCT_UPDATE_DOCS=1)."""
    if os.environ.get("TRIALSTRUCT_UPDATE_DOCS") == "1":
        shutil.copyfile(screenshot, REPO / "docs" / name)

HIGHLIGHTS = """() => [...document.querySelectorAll('#source .layer [data-entity-id]')]
    .map((n) => [n.dataset.entityId, n.textContent])"""

SELECT_TEXT = """([start, end]) => {
  const layer = document.querySelector('#source .layer[data-layer="0"]');
  const walker = document.createTreeWalker(layer, NodeFilter.SHOW_TEXT);
  let pos = 0, node, from = null, to = null;
  while ((node = walker.nextNode())) {
    const len = node.data.length;
    if (!from && start < pos + len) from = [node, start - pos];
    if (!to && end <= pos + len) { to = [node, end - pos]; break; }
    pos += len;
  }
  const range = document.createRange();
  range.setStart(...from);
  range.setEnd(...to);
  getSelection().removeAllRanges();
  getSelection().addRange(range);
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1500, "height": 900})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    # Chromium logs every non-2xx fetch as a console error; the refusals tested here are expected ones.
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" and "Failed to load" not in m.text else None)
    yield tab
    context.close()
    assert errors == [], errors


@pytest.fixture
def static_page(tmp_path, page):
    paths = review_inputs(tmp_path)
    html = tmp_path / "review.html"
    write_review(load_records(paths["run"]), html, load_gold(paths["gold"]), load_records(paths["other"]))
    page.goto(html.as_uri())
    page.wait_for_selector("#source [data-entity-id]")
    return page


def open_doc(page, doc_id: str) -> None:
    page.click(f'#doc-list li[data-doc="{doc_id}"]')
    page.wait_for_function("(id) => document.querySelector('#doc-head h2').textContent.startsWith(id)", arg=doc_id)


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def test_every_entity_is_one_highlight_whose_text_is_its_source_substring(static_page):
    page = static_page
    for record in sample_records():
        open_doc(page, record.doc_id)
        found = page.evaluate(HIGHLIGHTS)
        assert sorted(i for i, _ in found) == sorted(e.id for e in record.entities())
        by_id = {e.id: e for e in record.entities()}
        for entity_id, text in found:
            entity = by_id[entity_id]
            assert text == record.source_text[entity.start : entity.end] == entity.text
        layers = page.eval_on_selector_all("#source .layer", "(ls) => ls.map((l) => l.textContent)")
        assert layers and all(text == record.source_text for text in layers)
        crits = page.eval_on_selector_all("#source [data-criterion-id]", "(cs) => cs.map((c) => c.dataset.criterionId)")
        assert crits == [c.id for c in record.criteria]
    open_doc(page, "NCT-A")
    overlay = page.eval_on_selector_all("#source .overlay [data-entity-id]", "(ns) => ns.map((n) => n.textContent)")
    assert overlay == ["hepatitis B or hepatitis C infection"]
    shot(page, "review-run.png")


def test_click_through_from_highlight_to_criterion_and_back(static_page):
    page = static_page
    page.click('#source [data-entity-id="exc-1.e1"]')
    assert page.get_attribute("#criteria li.current", "data-criterion-ref") == "exc-1"
    details = page.inner_text("#details")
    assert "EGFR inhibitor" in details and "before first_dose days 0–28" in details
    assert json.loads(page.inner_text("#selection-json"))["temporal"]["max_days"] == 28
    page.click('#criteria li[data-criterion-ref="inc-2"]')
    assert page.get_attribute("#source .crit.selected", "data-criterion-id") == "inc-2"
    assert json.loads(page.inner_text("#selection-json"))["id"] == "inc-2"
    page.hover('#source [data-entity-id="inc-2.e2"]')
    tip = page.inner_text("#tooltip")
    assert "Measurement: “hemoglobin”" in tip and ">= low 9 high – g/dL" in tip


def test_type_toggle_hides_and_restores_highlights(static_page):
    page = static_page
    background = "(sel) => getComputedStyle(document.querySelector(sel)).backgroundColor"
    condition, drug = '#source [data-entity-id="exc-3.e1"]', '#source [data-entity-id="exc-1.e1"]'
    shown = page.evaluate(background, condition)
    assert shown != "rgba(0, 0, 0, 0)"
    page.uncheck('[data-type-toggle="Condition"]')
    assert page.evaluate(background, condition) == "rgba(0, 0, 0, 0)"
    assert page.evaluate(background, drug) != "rgba(0, 0, 0, 0)"
    page.check('[data-type-toggle="Condition"]')
    assert page.evaluate(background, condition) == shown


def test_gold_diff_colours_and_problem_navigation(static_page):
    page = static_page
    page.click('[data-view="gold"]')
    assert "relaxed P 0.86 R 0.86 F1 0.86 (tp 12, fp 2, fn 2)" in page.inner_text("#gold-score")
    assert page.locator("#source .st-tp").count() == 9
    assert page.inner_text("#source .st-fp") == "Prior treatment"
    assert page.inner_text("#source .st-partial") == "Adults"
    assert page.inner_text("#source .st-type") == "breastfeeding"
    assert page.inner_text("#source [data-gold-id]") == "first dose"
    page.keyboard.press("n")
    assert page.get_attribute("#source .selected", "data-entity-id") == "inc-1.e1"
    assert "gold has\tPerson “Adult” 70–75 (inc-1.e1)" in page.inner_text("#details")
    page.keyboard.press("n")
    assert page.inner_text("#source .selected") == "hemoglobin"
    page.click('#problems button[data-problem="miss"]')
    assert page.inner_text("#source .selected") == "first dose"
    assert "missed (in gold only)" in page.inner_text("#details")
    page.hover('#source [data-gold-id="exc-1.e9"]')
    final = shot(page, "review-gold.png")
    (REPO / "docs").mkdir(exist_ok=True)
    to_docs(final, "review-screenshot.png")


def test_vs_gold_shows_a_wrong_value_time_window_or_negation_as_a_difference_not_a_match(static_page):
    page = static_page
    page.click('[data-view="gold"]')
    shadow = "(sel) => getComputedStyle(document.querySelector(sel)).boxShadow"
    match_colour = page.evaluate(shadow, '#source [data-entity-id="inc-2.e1"]')
    for entity_id, attribute, gold_side in (
        ("inc-2.e2", "value", ">= low 10 high – g/dL ← “>= 9 g/dL”"),
        ("exc-1.e1", "time window", "—"),
    ):
        node = f'#source [data-entity-id="{entity_id}"]'
        assert page.get_attribute(node, "data-status") == "attr"
        assert page.evaluate(shadow, node) != match_colour
        page.click(node)
        details = page.inner_text("#details")
        assert "status\tmatches; value, time window or negation differs" in details
        assert page.inner_text('#details tr.differs[data-differs] td') == gold_side
        assert page.inner_text("#details tr.differs th") == f"gold {attribute}"
        page.hover(node)
        assert f"differs from gold: {attribute}" in page.inner_text("#tooltip")
    labels = page.eval_on_selector_all("#problems button", "(bs) => bs.map((b) => b.textContent)")
    assert labels == [
        "span: Person “Adults”", "value: Measurement “hemoglobin”", "false positive: Procedure “Prior treatment”",
        "time window: Drug “EGFR inhibitor”", "miss: Visit “first dose”", "type: Observation “breastfeeding”",
    ]
    page.click('#problems button[data-problem="type"]')
    assert "gold has\tCondition “breastfeeding”" in page.inner_text("#details")


def test_compare_view_shows_added_removed_and_changed(static_page):
    page = static_page
    page.click('[data-view="compare"]')
    assert page.inner_text("#compare-counts") == "vs other run: 1 added, 1 removed, 1 changed, 12 same"
    assert page.inner_text('#source [data-status="added"]') == "women"
    assert page.inner_text("#source [data-other-id]") == "dL"
    page.click('#source [data-status="changed"]')
    assert "changed negated\ttrue → false" in page.inner_text("#details")
    page.hover('#source [data-status="changed"]')
    assert "changed negated: true → false" in page.inner_text("#tooltip")
    shot(page, "review-compare.png")


def test_keyboard_navigation_and_filters(static_page):
    page = static_page
    page.keyboard.press("j")
    page.wait_for_function("document.querySelector('#doc-head h2').textContent.startsWith('NCT-B')")
    page.keyboard.press("ArrowUp")
    page.wait_for_function("document.querySelector('#doc-head h2').textContent.startsWith('NCT-A')")
    page.fill("#f-text", "pancreatitis")
    assert page.inner_text("#list-count") == "1 of 3 documents"
    assert page.get_attribute("#doc-list li", "data-doc") == "NCT-B"
    page.fill("#f-text", "")
    page.select_option("#f-type", "Drug")
    assert page.eval_on_selector_all("#doc-list li", "(ls) => ls.map((l) => l.dataset.doc)") == ["NCT-A", "NCT-B"]
    page.select_option("#f-type", "")
    page.select_option("#f-kind", "exclusion")
    assert page.locator("#criteria li:visible").count() == 3
    page.select_option("#f-kind", "")
    page.check("#f-problems")
    assert page.inner_text("#list-count") == "3 of 3 documents"


def test_script_injection_probe_renders_as_text_and_runs_nothing(static_page):
    page = static_page
    for view in ("run", "gold", "compare"):
        page.click(f'[data-view="{view}"]')
        open_doc(page, "probe-xss")
        page.hover('#source [data-entity-id="inc-1.e1"]')
        assert page.evaluate("typeof window.__pwned") == "undefined"
        source = page.inner_text("#source .layer")
        assert "<script>window.__pwned=1</script>" in source
        assert '<img src=x onerror="window.__pwned=1"> lesions' in source
        assert '<img src=x onerror="window.__pwned=1"> lesions' in page.inner_text("#tooltip")
        assert "<script>window.__pwned=1</script>" in page.inner_text("#doc-head h2")
        assert page.locator("img").count() == 0 and page.locator("script").count() == 2
    shot(page, "review-probe.png")


def test_large_run_index_and_document_pages(tmp_path, page):
    written = write_review(sample_records(), tmp_path / "review.html", per_page=2)
    page.goto(written[0].as_uri())
    page.click('#doc-list li[data-doc="NCT-A"] a')
    page.wait_for_selector("#source [data-entity-id]")
    assert len(page.evaluate(HIGHLIGHTS)) == 14
    page.keyboard.press("j")
    page.wait_for_url(written[2].as_uri())
    page.wait_for_selector("#source [data-entity-id]")
    assert len(page.evaluate(HIGHLIGHTS)) == 4
    page.goto(written[3].as_uri())
    page.wait_for_selector("#source [data-entity-id]")
    page.hover('#source [data-entity-id="inc-1.e1"]')
    assert "<script>window.__pwned=1</script>" in page.inner_text("#source .layer")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("script").count() == 2 and page.locator("script[src='review.js']").count() == 1


@pytest.fixture
def served(tmp_path) -> Iterator[ReviewHTTPServer]:
    with running_review_server(tmp_path) as httpd:
        yield httpd


def select_text(page, text: str, needle: str) -> None:
    start = text.index(needle)
    page.evaluate(SELECT_TEXT, [start, start + len(needle)])
    page.wait_for_timeout(50)


def pick(page, entity_id: str) -> None:
    page.click(f'#criteria [data-entity-ref="{entity_id}"]')
    page.wait_for_selector(f'#editor strong:text-is("{entity_id}")')


def test_serve_mode_edit_save_reload(served, page):
    source = sample_records()[1].source_text
    page.goto(served.url)
    page.wait_for_selector("#source [data-entity-id]")
    page.click('[data-view="edit"]')
    assert "Editing a copy of the gold record" in page.inner_text("#editor")
    open_doc(page, "NCT-B")
    assert "Editing a copy of the run record" in page.inner_text("#editor")
    pick(page, "exc-1.e1")
    page.uncheck("#negated")
    pick(page, "inc-1.e1")
    select_text(page, source, "Type 2 diabetes")
    page.click("#set-span")
    pick(page, "inc-2.1.e1")
    page.click("#delete")
    select_text(page, source, "stable metformin dose")
    page.select_option("#new-type", "Drug")
    page.click("#add-entity")
    pick(page, "inc-2.e1")
    page.select_option("#retype", "Observation")
    assert page.input_value("#value-high") == "10.5" and page.input_value("#value-comparator") == "between"
    page.fill("#value-high", "10")
    page.click("#apply-fields")
    page.click("#accept")
    page.fill("#reviewer", "Ada")
    page.click("#save-gold")
    page.wait_for_selector("#edit-status.ok >> text=saved")
    shot(page, "review-serve-saved.png")

    saved = TrialRecord.model_validate_json((served.store.gold_dir / "NCT-B.json").read_text())
    ents = {e.id: e for e in saved.entities()}
    assert ents["exc-1.e1"].negated is False
    assert (ents["inc-1.e1"].text, ents["inc-1.e1"].end - ents["inc-1.e1"].start) == ("Type 2 diabetes", 15)
    assert (ents["inc-2.1.e1"].type, ents["inc-2.1.e1"].text) == ("Drug", "stable metformin dose")
    assert (ents["inc-2.e1"].type, ents["inc-2.e1"].value.high) == ("Observation", 10.0)
    assert saved.annotation.checked_by == "Ada"
    review_line = " reviewed by Ada in trialstruct review --serve: 1 accepted, 6 edits (from the run record)"
    assert saved.annotation.notes.endswith(review_line)

    page.reload()
    page.wait_for_selector("#source [data-entity-id]")
    open_doc(page, "NCT-B")
    page.click('[data-view="gold"]')
    # run vs new gold: pancreatitis matches strictly (negation is not a span), diabetes and metformin only
    # relaxed (spans changed), HbA1c not at all (retyped)
    score = page.inner_text("#gold-score")
    assert "strict P 0.25 R 0.25 F1 0.25 (tp 1, fp 3, fn 3)" in score
    assert "relaxed P 0.75 R 0.75 F1 0.75 (tp 3, fp 1, fn 1)" in score
    page.click('[data-view="edit"]')
    assert "Editing a copy of the gold record" in page.inner_text("#editor")
    assert page.inner_text('#source [data-entity-id="inc-2.1.e1"]') == "stable metformin dose"

    status = page.evaluate("""async () => {
        const token = JSON.parse(document.getElementById('review-data').textContent).token;
        const response = await fetch('/api/gold/..%2Fescaped', {method: 'POST', body: '{}',
            headers: {'Content-Type': 'application/json', 'X-Review-Token': token}});
        return response.status;
    }""")
    assert status == 404
    assert not list(served.store.gold_dir.parent.rglob("escaped*"))


def gold_b_with_negation_flipped() -> TrialRecord:
    data = sample_records()[1].model_dump(mode="json")
    data["criteria"][3]["entities"][0]["negated"] = False
    return TrialRecord.model_validate(data)


def overview_rows(page) -> list[list[str]]:
    return page.eval_on_selector_all(
        "#overview-docs tbody tr", "(rs) => rs.map((r) => [...r.children].map((c) => c.textContent))"
    )


def test_problems_overview_sorts_groups_exports_and_opens_documents(tmp_path, page):
    paths = review_inputs(tmp_path)
    write_gold(paths["gold"], [gold_b_with_negation_flipped()])
    html = tmp_path / "review.html"
    written = write_review(load_records(paths["run"]), html, load_gold(paths["gold"]))
    page.goto(html.as_uri())
    page.wait_for_selector("#source [data-entity-id]")
    page.click('[data-view="overview"]')
    assert page.is_hidden("#source-scroll") and page.is_visible("#overview")
    #            document, F1, problems, fp, miss, span, type, value, time window, negation, comment
    a = ["NCT-A", "0.86", "6", "1", "1", "1", "1", "1", "1", "0", ""]
    b = ["NCT-B", "1.00", "1", "0", "0", "0", "0", "0", "0", "1", ""]
    assert overview_rows(page) == [a, b]
    page.click('#overview th[data-sort="f1"]')
    assert overview_rows(page) == [b, a]
    page.click('#overview th[data-sort="negation"]')
    assert overview_rows(page) == [b, a]
    page.click('#overview th[data-sort="total"]')
    assert overview_rows(page) == [a, b]
    totals = page.eval_on_selector_all("#overview-docs tfoot td", "(cs) => cs.map((c) => c.textContent)")
    assert totals == ["2 documents", "", "7", "1", "1", "1", "1", "1", "1", "1", ""]
    csv_href = page.get_attribute("#overview-csv", "href")
    assert (tmp_path / csv_href) == written[-1] and len(written[-1].read_text().splitlines()) == 1 + 7
    shot(page, "review-problems-overview.png")
    to_docs(ARTIFACTS / "review-problems-overview.png", "review-problems-overview.png")
    page.select_option("#overview-group", "kind")
    summaries = page.eval_on_selector_all("#overview-kinds summary", "(ss) => ss.map((s) => s.textContent)")
    assert summaries == [
        "false positive (1)", "miss (1)", "span (1)", "type (1)", "value (1)", "time window (1)", "negation (1)",
    ]
    negation = '#overview-kinds details[data-kind="negation"] tr[data-doc]'
    cells = page.eval_on_selector(negation, "(r) => [...r.children].map((c) => c.textContent)")
    assert cells == ["NCT-B", "1.00", "exc-1", "Condition", "pancreatitis", "negated", "not negated"]
    shot(page, "review-problems-by-kind.png")
    page.click(negation)
    page.wait_for_function("document.querySelector('#doc-head h2').textContent.startsWith('NCT-B')")
    assert page.get_attribute('[data-view="gold"]', "class") == "active"
    assert page.get_attribute('#source [data-entity-id="exc-1.e1"]', "data-status") == "attr"


def test_problems_overview_of_a_paged_review_opens_document_pages(tmp_path, page):
    paths = review_inputs(tmp_path)
    written = write_review(load_records(paths["run"]), tmp_path / "review.html", load_gold(paths["gold"]), per_page=2)
    page.goto(written[0].as_uri())
    page.click('[data-view="overview"]')
    assert [row[0] for row in overview_rows(page)] == ["NCT-A"]
    page.click('#overview-docs tr[data-doc="NCT-A"]')
    page.wait_for_url(written[1].as_uri())
    page.wait_for_selector("#source [data-entity-id]")
    assert len(page.evaluate(HIGHLIGHTS)) == 14


def test_value_and_time_window_are_edited_in_a_form(served, page):
    source = sample_records()[1].source_text
    page.goto(served.url)
    page.wait_for_selector("#source [data-entity-id]")
    open_doc(page, "NCT-B")
    page.click('[data-view="edit"]')
    pick(page, "inc-2.e1")
    page.fill("#value-low", "7.5")
    page.select_option("#value-comparator", ">=")
    page.fill("#value-high", "")
    page.click("#apply-fields")
    pick(page, "inc-1.e1")
    assert page.input_value("#temporal-text") == "at least 6 months before screening"
    assert (page.input_value("#temporal-direction"), page.input_value("#temporal-min_days")) == ("before", "180")
    assert page.input_value("#value-text") == "" and page.input_value("#value-comparator") == ""
    page.fill("#value-text", "HbA1c")
    page.click("#apply-fields")
    assert page.inner_text("#edit-status") == "value: “HbA1c” is not in criterion inc-1"
    page.fill("#value-text", "")
    select_text(page, source, "6 months before screening")
    page.click("#temporal-use-selection")
    page.fill("#temporal-min_days", "182.5")
    page.fill("#temporal-anchor", "screening visit")
    page.click("#apply-fields")
    assert page.inner_text("#edit-status") == "value and time window of inc-1.e1 updated"
    shot(page, "review-value-form.png")
    to_docs(ARTIFACTS / "review-value-form.png", "review-value-form.png")
    page.click("#save-gold")
    page.wait_for_selector("#edit-status.ok >> text=saved")
    gold = TrialRecord.model_validate_json((served.store.gold_dir / "NCT-B.json").read_text())
    saved = {e.id: e for e in gold.entities()}
    temporal = saved["inc-1.e1"].temporal
    start = source.index("6 months before screening")
    assert (temporal.text, temporal.start, temporal.end) == ("6 months before screening", start, start + 25)
    assert (temporal.direction, temporal.anchor, temporal.min_days, temporal.max_days) == (
        "before", "screening visit", 182.5, None,
    )
    value = saved["inc-2.e1"].value
    assert (value.text, value.comparator, value.low, value.high, value.unit) == (
        "between 7.0% and 10.5%", ">=", 7.5, None, "%",
    )
    assert source[value.start : value.end] == value.text


def test_reviewer_comment_is_saved_beside_gold_and_shown_after_reload(served, page):
    page.goto(served.url)
    page.wait_for_selector("#source [data-entity-id]")
    gold_file = served.store.gold_dir / "NCT-A.json"
    before = gold_file.read_bytes()
    page.click('[data-view="edit"]')
    page.fill("#reviewer", "Ada")
    page.fill("#comment-input", "hemoglobin threshold: check the protocol")
    page.click("#save-comment")
    page.wait_for_selector("#comment-status.ok")
    assert page.inner_text("#comment-status").startswith("saved: by Ada on ")
    assert gold_file.read_bytes() == before
    page.reload()
    page.wait_for_selector("#source [data-entity-id]")
    assert page.input_value("#comment-input") == "hemoglobin threshold: check the protocol"
    page.click('[data-view="overview"]')
    assert overview_rows(page)[0][-1] == "hemoglobin threshold: check the protocol"
    csv_text = page.evaluate("async () => (await fetch('/problems.csv')).text()")
    assert "hemoglobin threshold: check the protocol" in csv_text.splitlines()[1]
