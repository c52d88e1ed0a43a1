"""`trialstruct review --serve` over real HTTP on 127.0.0.1: saving gold, history, refusals, concurrency."""

from __future__ import annotations

import http.client
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from pipeline.review.page import load_comments, load_gold
from pipeline.review.server import ReviewHTTPServer
from pipeline.schema import TrialRecord
from tests.review_fixtures import SPEC_B, TRIAL_B, build_record, running_review_server, sample_records


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ReviewHTTPServer]:
    with running_review_server(tmp_path) as httpd:
        yield httpd


def call(httpd: ReviewHTTPServer, method: str, path: str, body: bytes | None = None, **headers: str):
    """(status, parsed JSON or text) of one real HTTP request."""
    request = urllib.request.Request(httpd.url.rstrip("/") + path, data=body, method=method)
    for name, value in headers.items():
        request.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw, kind = response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as err:
        status, raw, kind = err.code, err.read(), err.headers.get_content_type()
    return status, json.loads(raw) if kind == "application/json" else raw.decode()


def save(httpd: ReviewHTTPServer, doc_id: str, record: dict | bytes, **headers: str):
    body = record if isinstance(record, bytes) else json.dumps(record).encode()
    headers = {"Content_Type": "application/json", "X_Review_Token": httpd.token, **headers}
    return call(httpd, "POST", f"/api/gold/{doc_id}", body, **headers)


def edited_b() -> dict:
    data = sample_records()[1].model_dump(mode="json")
    data["criteria"][0]["entities"][0]["negated"] = True
    data["annotation"] = {"method": "test", "checked_by": "pytest", "date": "2026-11-21"}
    return data


def test_binds_loopback_and_serves_page_and_documents(server):
    assert server.server_address[0] == "127.0.0.1"
    status, html = call(server, "GET", "/")
    assert status == 200 and server.token in html and '"editable": true' in html
    status, bundle = call(server, "GET", "/api/doc/NCT-A")
    assert status == 200 and bundle["record"]["doc_id"] == "NCT-A"
    assert bundle["gold"]["record"]["annotation"]["checked_by"] == "tests"
    assert call(server, "GET", "/api/gold/NCT-B")[0] == 404
    assert call(server, "GET", "/api/doc/NCT-Z")[0] == 404


def test_save_writes_a_valid_gold_file_and_keeps_the_previous_version(server):
    gold = server.store.gold_dir
    status, reply = save(server, "NCT-B", edited_b())
    assert status == 200, reply
    saved = TrialRecord.model_validate_json((gold / "NCT-B.json").read_text())
    assert saved.criteria[0].entities[0].negated is True
    assert reply["previous"] is None and reply["bundle"]["gold"]["relaxed"]["tp"] == 4
    second = edited_b()
    second["criteria"][0]["entities"] = []
    status, reply = save(server, "NCT-B", second)
    assert status == 200
    assert TrialRecord.model_validate_json((gold / "NCT-B.json").read_text()).criteria[0].entities == []
    assert TrialRecord.model_validate_json(Path(reply["previous"]).read_text()) == saved
    assert Path(reply["previous"]).parent == gold / ".history"
    assert reply["summary"]["score"]["fp"] == 1
    assert call(server, "GET", "/api/gold/NCT-B")[1]["criteria"][0]["entities"] == []


@pytest.mark.parametrize("doc_id", ["..%2Fescaped", "..%2F..%2Fescaped", "%2Ftmp%2Fescaped", ".hidden", "a%5Cb"])
def test_ids_not_in_the_run_are_refused_and_nothing_is_written(server, doc_id):
    status, reply = save(server, doc_id, edited_b())
    assert status == 404 and reply["error"] == f"no document {unquote(doc_id)!r} in this run"
    root = server.store.gold_dir.parent
    assert sorted(p.name for p in root.rglob("*escaped*")) == []
    assert sorted(p.name for p in server.store.gold_dir.iterdir()) == ["NCT-A.json"]


ODD_IDS = ["NCT 0001", "site/NCT0002", "étude-3", "../escape", ".hidden", "a\\b", "x" * 300, "NCT-B"]


def test_any_document_id_is_served_and_saved_inside_the_gold_directory(tmp_path):
    records = [build_record(doc_id, TRIAL_B, SPEC_B) for doc_id in ODD_IDS]
    gold = tmp_path / "work" / "gold"
    with running_review_server(tmp_path, records, with_gold=False) as httpd:
        status, html = call(httpd, "GET", "/")
        assert status == 200 and all(json.dumps(d, ensure_ascii=False)[1:-1] in html for d in ODD_IDS)
        for doc_id in ODD_IDS:
            path = "/api/doc/" + quote(doc_id, safe="")
            assert call(httpd, "GET", path)[1]["record"]["doc_id"] == doc_id
            record = records[ODD_IDS.index(doc_id)].model_dump(mode="json")
            status, reply = save(httpd, quote(doc_id, safe=""), record)
            assert status == 200, reply
            assert Path(reply["path"]).parent == httpd.store.gold_dir
        gold = httpd.store.gold_dir
    assert sorted(r.doc_id for r in load_gold(gold).values()) == sorted(ODD_IDS)
    assert all(p.parent == gold for p in tmp_path.rglob("*.json"))
    assert (gold / "NCT-B.json").is_file() and not list(tmp_path.rglob("escape*"))


def raw_request(httpd: ReviewHTTPServer, method: str, path: str, headers: dict[str, str], body: bytes = b""):
    """(status, JSON) of a request sent as written, headers included, over a plain socket connection."""
    host, port = httpd.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body or None)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_nul_in_an_id_and_a_bad_content_length_get_a_clear_4xx(server):
    post = {"Content-Type": "application/json", "X-Review-Token": server.token}
    status, reply = raw_request(server, "GET", "/api/doc/NCT%00A", {})
    assert status == 404 and reply["error"] == "no document 'NCT\\x00A' in this run"
    assert raw_request(server, "POST", "/api/gold/%00", {**post, "Content-Length": "2"}, b"{}")[0] == 404
    status, reply = raw_request(server, "POST", "/api/gold/NCT-B", {**post, "Content-Length": "abc"}, b"{}")
    assert status == 400 and reply["error"] == "Content-Length 'abc' is not a number"
    status, reply = raw_request(server, "POST", "/api/gold/NCT-B", {**post, "Content-Length": "-5"}, b"{}")
    assert status == 400 and "is not a number" in reply["error"]
    status, reply = raw_request(server, "POST", "/api/gold/NCT-B", post)
    assert status == 411 and reply["error"] == "a POST needs a Content-Length header"
    assert sorted(p.name for p in server.store.gold_dir.iterdir()) == ["NCT-A.json"]


def test_a_burst_of_48_concurrent_saves_is_answered_without_resets(server):
    body = json.dumps(edited_b()).encode()
    start = threading.Barrier(48)
    outcomes: list[object] = []

    def one_save() -> None:
        start.wait()
        try:
            outcomes.append(save(server, "NCT-B", body)[0])
        except OSError as exc:  # ConnectionResetError, refused, timeout
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=one_save) for _ in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes == [200] * 48
    assert len(list((server.store.gold_dir / ".history").glob("NCT-B.*.json"))) == 47


def test_bad_saves_are_refused_and_leave_the_file_alone(server):
    gold_file = server.store.gold_dir / "NCT-A.json"
    before = gold_file.read_bytes()
    record = sample_records()[0].model_dump(mode="json")
    record["criteria"][0]["entities"][0]["end"] += 1
    status, reply = save(server, "NCT-A", record)
    assert status == 422 and "source_text[" in reply["error"]
    assert save(server, "NCT-A", edited_b())[0] == 400
    other_text = sample_records()[0].model_dump(mode="json")
    other_text["source_text"] += " "
    assert save(server, "NCT-A", other_text)[1]["error"].startswith("source_text differs")
    good = sample_records()[0].model_dump(mode="json")
    assert save(server, "NCT-A", good, X_Review_Token="guess")[0] == 403
    assert save(server, "NCT-A", good, Content_Type="text/plain")[0] == 415
    assert save(server, "NCT-A", good, Host="evil.example:80")[0] == 403
    assert save(server, "NCT-A", b"{not json")[0] == 422
    assert gold_file.read_bytes() == before


def test_concurrent_saves_never_corrupt_the_file_nor_lose_a_review_line(server):
    versions = []
    for n in range(24):
        data = edited_b()
        data["annotation"]["notes"] = f"version {n} " + "x" * 20000
        versions.append(data)
    results = []

    def worker(chunk):
        results.extend(save(server, "NCT-B", v)[0] for v in chunk)

    threads = [threading.Thread(target=worker, args=(versions[i::6],)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 24
    gold = server.store.gold_dir
    final = TrialRecord.model_validate_json((gold / "NCT-B.json").read_text()).annotation.notes.split("\n")
    assert sorted(line.split(": ", 1)[1] for line in final) == sorted(v["annotation"]["notes"] for v in versions)
    history = sorted((gold / ".history").glob("NCT-B.*.json"))
    assert len(history) == 23
    kept = sorted(TrialRecord.model_validate_json(p.read_text()).annotation.notes.split("\n") for p in history)
    assert [len(notes) for notes in kept] == list(range(1, 24))
    assert all(notes == final[: len(notes)] for notes in kept)
    assert not list(gold.glob(".*.tmp"))


def test_saving_appends_reviewer_and_date_to_the_gold_notes(server):
    gold_file = server.store.gold_dir / "NCT-A.json"
    before = TrialRecord.model_validate_json(gold_file.read_text())
    record = before.model_dump(mode="json")
    record["annotation"] = {"method": "page", "checked_by": "Ada", "date": "1999-01-01", "notes": "2 edits"}
    assert save(server, "NCT-A", record)[0] == 200
    after = TrialRecord.model_validate_json(gold_file.read_text()).annotation
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert (after.method, after.checked_by, after.date) == (before.annotation.method, "tests", "2026-11-21")
    assert after.notes == f"{today} reviewed by Ada in trialstruct review --serve: 2 edits"
    record["annotation"]["checked_by"] = "Grace"
    assert save(server, "NCT-A", record)[0] == 200
    notes = TrialRecord.model_validate_json(gold_file.read_text()).annotation.notes.split("\n")
    assert notes == [after.notes, f"{today} reviewed by Grace in trialstruct review --serve: 2 edits"]
    status, reply = save(server, "NCT-B", {**edited_b(), "annotation": None})
    assert status == 200
    new = TrialRecord.model_validate_json(Path(reply["path"]).read_text()).annotation
    line = f"{today} reviewed by reviewer in trialstruct review --serve"
    assert (new.checked_by, new.date, new.notes) == ("reviewer", today, line)


def test_a_reviewer_comment_is_saved_beside_gold_never_in_it(server):
    gold_file = server.store.gold_dir / "NCT-A.json"
    before = gold_file.read_bytes()
    body = json.dumps({"text": "value of hemoglobin: check units", "reviewer": "Ada"}).encode()
    headers = {"Content_Type": "application/json", "X_Review_Token": server.token}
    status, reply = call(server, "POST", "/api/comment/NCT-A", body, **headers)
    assert status == 200 and reply["comment"]["text"] == "value of hemoglobin: check units"
    assert gold_file.read_bytes() == before
    assert call(server, "GET", "/api/doc/NCT-A")[1]["comment"]["reviewer"] == "Ada"
    assert load_comments(server.store.gold_dir)["NCT-A"]["text"] == "value of hemoglobin: check units"
    assert "value of hemoglobin: check units" in call(server, "GET", "/problems.csv")[1]
    assert call(server, "POST", "/api/comment/NCT-A", b"[1]", **headers)[0] == 400
    assert call(server, "POST", "/api/comment/NCT-A", body, Content_Type="application/json")[0] == 403
    assert call(server, "POST", "/api/comment/NCT-A", b'{"text": ""}', **headers)[1] == {"comment": None}
    assert call(server, "GET", "/api/doc/NCT-A")[1]["comment"] is None
    assert sorted(p.name for p in server.store.gold_dir.iterdir()) == [".comments", "NCT-A.json"]
