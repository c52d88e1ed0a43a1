"""`trialstruct review --serve` over real HTTP on 127.0.0.1: saving gold, history, refusals, concurrency."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.review.server import ReviewHTTPServer
from pipeline.schema import TrialRecord
from tests.review_fixtures import running_review_server, sample_records


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
def test_path_traversal_is_refused(server, doc_id):
    record = edited_b()
    status, reply = save(server, doc_id, record)
    assert status == 403 and "not a file name inside the gold directory" in reply["error"]
    root = server.store.gold_dir.parent
    assert sorted(p.name for p in root.rglob("*escaped*")) == []
    assert sorted(p.name for p in server.store.gold_dir.iterdir()) == ["NCT-A.json"]


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


def test_concurrent_saves_never_corrupt_the_file(server):
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
    final = TrialRecord.model_validate_json((gold / "NCT-B.json").read_text())
    assert final.annotation.notes in {v["annotation"]["notes"] for v in versions}
    history = sorted((gold / ".history").glob("NCT-B.*.json"))
    assert len(history) == 23
    assert {TrialRecord.model_validate_json(p.read_text()).annotation.notes for p in history} | {
        final.annotation.notes
    } == {v["annotation"]["notes"] for v in versions}
    assert not list(gold.glob(".*.tmp"))
