"""The openai backend against a scripted HTTP server: transport retries, re-asks, drops, failures.

One run over six small documents; each document's criteria carry a marker word that selects its
script on the server, so the faults of one document must not leak into the others.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.config import RunConfig
from pipeline.extract import load_backend
from pipeline.extract.openai_compat import retry_after
from pipeline.ingest import iter_documents
from pipeline.run import run
from pipeline.segment import segment
from tests.fault_server import (
    CRITERION_LINE,
    FaultServer,
    answer,
    content,
    criteria_message,
    error,
    hang,
    trickled,
    truncated,
)

DOCS = {
    "alpha": "Diagnosis of alpha asthma",
    "bravo": "Diagnosis of bravo bronchitis",
    "charlie": "Diagnosis of charlie cholera",
    "delta": "Diagnosis of delta dengue",
    "echo": "Diagnosis of echo eczema",
    "foxtrot": "Hemoglobin >= 9 g/dL in foxtrot patients",
}
TRANSPORT_RETRIES = 3


def entity(text: str, type: str = "Condition", **extra: object) -> dict[str, object]:
    return {"t": text, "y": type, **extra}


SCRIPTS = {
    "alpha": [error(429, **{"Retry-After": "1"}), error(500), hang(3.0)],
    "bravo": [content('{"inc-1": [{"t": "bron'), content('{"inc-1": [{"t": 5}]}')],
    "charlie": [answer(entity("cholera"), entity("unicorn fever"))] * 2,
    "delta": [error(503)] * (TRANSPORT_RETRIES + 1),
    "foxtrot": [answer(entity("Hemoglobin", "Measurement", v=">= 9 g/dL", vn=">= 99 - g/dL"))],
}


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> tuple[FaultServer, Path]:
    inputs = tmp_path_factory.mktemp("inputs")
    for name, criterion in DOCS.items():
        (inputs / f"{name}.txt").write_text(f"Inclusion Criteria:\n1. {criterion}\n", encoding="utf-8")
    outdir = tmp_path_factory.mktemp("out")
    with FaultServer(SCRIPTS) as server:
        config = RunConfig(backend="openai", base_url=server.url, model="scripted", api_key="sk-test", timeout=1.0,
                           max_reasks=2, max_transport_retries=TRANSPORT_RETRIES, cache_mode="off")
        run([inputs], outdir, config)
    return server, outdir


def records(outdir: Path) -> dict[str, dict]:
    lines = (outdir / "records.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["doc_id"]: r for r in map(json.loads, lines)}


def entity_texts(record: dict) -> list[str]:
    return [e["text"] for c in record["criteria"] for e in c["entities"]]


def test_transport_faults_are_retried_and_retry_after_is_honoured(outcome: tuple[FaultServer, Path]) -> None:
    server, outdir = outcome
    sent = server.requests_for("alpha")
    assert len(sent) == 4  # 429, 500, hang past the timeout, then the answer
    assert sent[1]["time"] - sent[0]["time"] >= 1.0
    assert entity_texts(records(outdir)["alpha"]) == ["asthma"]


def test_invalid_json_is_reasked_with_the_error(outcome: tuple[FaultServer, Path]) -> None:
    server, outdir = outcome
    sent = server.requests_for("bravo")
    assert len(sent) == 3
    reask = sent[2]["body"]["messages"][-1]["content"]
    assert "inc-1" in reask and "string" in reask  # the validation error of attempt 2 ('t' is not a string)
    assert entity_texts(records(outdir)["bravo"]) == ["bronchitis"]


def test_ungrounded_entity_is_reasked_then_dropped_with_a_warning(outcome: tuple[FaultServer, Path]) -> None:
    server, outdir = outcome
    sent = server.requests_for("charlie")
    assert len(sent) == 2  # the re-ask came back with the same error: asking again cannot succeed
    assert "'unicorn fever' (criterion inc-1): text not found" in sent[1]["body"]["messages"][-1]["content"]
    record = records(outdir)["charlie"]
    assert entity_texts(record) == ["cholera"]
    assert record["criteria"][0]["entities"][0]["id"] == "inc-1.e1"
    assert any("'unicorn fever'" in w for w in record["warnings"])


def test_a_value_number_not_in_the_text_is_flagged_and_the_parsed_value_kept(outcome: tuple[FaultServer, Path]) -> None:
    server, outdir = outcome
    assert len(server.requests_for("foxtrot")) == 1  # a re-ask cannot fix what code can: never sent
    record = records(outdir)["foxtrot"]
    value = record["criteria"][0]["entities"][0]["value"]
    assert (value["text"], value["comparator"], value["low"], value["unit"]) == (">= 9 g/dL", ">=", 9, "g/dL")
    assert any("number 99 is not in the text; kept the parsed form" in w for w in record["warnings"])


def test_failing_document_goes_to_errors_and_others_are_unaffected(outcome: tuple[FaultServer, Path]) -> None:
    server, outdir = outcome
    errors = [json.loads(line) for line in (outdir / "errors.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(e["doc_id"], e["stage"]) for e in errors] == [("delta", "extract")]
    assert "TransportError" in errors[0]["error"] and "503" in errors[0]["error"]
    assert len(server.requests_for("delta")) == TRANSPORT_RETRIES + 1
    done = records(outdir)
    assert sorted(done) == ["alpha", "bravo", "charlie", "echo", "foxtrot"]
    assert entity_texts(done["echo"]) == ["eczema"]
    for record in done.values():
        assert record["provenance"]["backend"] == "openai"
        assert record["provenance"]["prompt_version"] == "extract-v2"
        assert len(record["provenance"]["prompt_hash"]) == 64


def test_usage_counts_every_attempt(outcome: tuple[FaultServer, Path]) -> None:
    server, outdir = outcome
    usage = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))["usage"]
    assert usage["calls"] == len(server.served)
    assert usage["prompt_tokens"] == sum(u["prompt_tokens"] for u in server.served)
    assert usage["completion_tokens"] == sum(u["completion_tokens"] for u in server.served)
    assert usage["retries"] == 3 + TRANSPORT_RETRIES  # alpha's three faults, then delta's retries
    assert usage["reasks"] == 2 + 1  # bravo, charlie
    assert usage["dropped_entities"] == 1
    per_document = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))["usage_per_document"]
    assert per_document["charlie"]["reasks"] == 1 and per_document["alpha"]["retries"] == 3
    assert "delta" not in per_document  # the failed document's retries count in the total only
    assert sum(d["retries"] for d in per_document.values()) == usage["retries"] - TRANSPORT_RETRIES
    cost = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))["cost"]
    assert (cost["input_tokens"], cost["output_tokens"]) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert cost["usd"] is None and cost["model"] == "scripted"  # not in the price table: tokens, no dollars


def test_the_manifest_prices_a_run_from_the_price_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"models": {"scripted": {"input": 2.0, "output": 8.0}}}), encoding="utf-8")
    monkeypatch.setenv("TRIALSTRUCT_PRICES", str(prices))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "golf.txt").write_text("Inclusion Criteria:\n1. Diagnosis of golf elbow\n", encoding="utf-8")
    with FaultServer() as server:
        config = RunConfig(backend="openai", base_url=server.url, model="scripted", cache_mode="off")
        run([tmp_path / "in"], tmp_path / "out", config)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    usage, cost = manifest["usage"], manifest["cost"]
    expected = (usage["prompt_tokens"] * 2.0 + usage["completion_tokens"] * 8.0) / 1e6
    assert cost["usd"] == pytest.approx(expected) and cost["usd_per_1000_documents"] == pytest.approx(expected * 1000)


def test_token_budget_stops_reasks(tmp_path: Path) -> None:
    (tmp_path / "golf.txt").write_text("Inclusion Criteria:\n1. Diagnosis of golf gout\n", encoding="utf-8")
    with FaultServer({"golf": [content("not json")] * 5}) as server:
        config = RunConfig(backend="openai", base_url=server.url, model="scripted", max_reasks=4,
                           doc_token_budget=1, cache_mode="off")
        result = run([tmp_path / "golf.txt"], tmp_path / "out", config)
    assert len(server.requests) == 1
    assert [f.doc_id for f in result.failures] == ["golf"]
    assert "TokenBudgetExceeded" in result.failures[0].error
    assert result.usage.calls == 1


def test_answer_cut_off_at_max_tokens_keeps_finished_criteria_and_resends_the_rest(tmp_path: Path) -> None:
    lines = ["Diagnosis of hotel hepatitis", "History of hotel hypertension", "Prior hotel hysterectomy"]
    numbered = "".join(f"{n}. {text}\n" for n, text in enumerate(lines, 1))
    (tmp_path / "hotel.txt").write_text(f"Inclusion Criteria:\n{numbered}", encoding="utf-8")
    cut = '{"inc-1": [' + json.dumps(entity("hepatitis")) + '], "inc-2": [' + json.dumps(entity("hypertension"))
    with FaultServer({"hotel": [truncated(cut + ', {"t": "hy')]}) as server:
        config = RunConfig(backend="openai", base_url=server.url, model="scripted", cache_mode="off")
        result = run([tmp_path / "hotel.txt"], tmp_path / "out", config)
    resent = [cid for cid, _ in CRITERION_LINE.findall(criteria_message(server.requests[1]["body"]))]
    assert (len(server.requests), resent) == (2, ["inc-2", "inc-3"])
    record = records(tmp_path / "out")["hotel"]
    assert entity_texts(record) == ["hepatitis", "hypertension", "hysterectomy"]
    assert result.usage.calls == 2


def test_a_cut_off_answer_is_cached_and_replays_offline(tmp_path: Path) -> None:
    lines = ["Diagnosis of india influenza", "History of india ileus"]
    numbered = "".join(f"{n}. {text}\n" for n, text in enumerate(lines, 1))
    (tmp_path / "india.txt").write_text(f"Inclusion Criteria:\n{numbered}", encoding="utf-8")
    cut = '{"inc-1": [' + json.dumps(entity("influenza")) + '], "inc-2": [{"t": "il'
    with FaultServer({"india": [truncated(cut)]}) as server:
        config = RunConfig(backend="openai", base_url=server.url, model="scripted", cache_dir=str(tmp_path / "c"))
        run([tmp_path / "india.txt"], tmp_path / "live", config)
        calls = len(server.requests)
        replay = run([tmp_path / "india.txt"], tmp_path / "replay", replace(config, cache_mode="offline"))
        assert len(server.requests) == calls
    assert replay.failures == []
    live = (tmp_path / "live" / "records.jsonl").read_bytes()
    assert live == (tmp_path / "replay" / "records.jsonl").read_bytes()
    assert entity_texts(json.loads(live)) == ["influenza", "ileus"]


def test_cached_answers_replay_offline_without_a_client(tmp_path: Path) -> None:
    (tmp_path / "mike.txt").write_text("Inclusion Criteria:\n1. Diagnosis of mike migraine\n", encoding="utf-8")
    with FaultServer({"mike": [content("not json")]}) as server:  # the first attempt fails: never cached
        config = RunConfig(backend="openai", base_url=server.url, model="scripted", cache_dir=str(tmp_path / "c"))
        first = run([tmp_path / "mike.txt"], tmp_path / "live", config)
    assert (len(server.requests), first.usage.reasks) == (2, 1)
    offline = replace(config, cache_mode="offline")
    backend = load_backend(offline)
    record = segment(next(iter_documents([tmp_path / "mike.txt"])))
    extraction = backend.extract(record)  # the server is gone: only the cache can answer
    assert backend._client is None
    assert entity_texts(extraction.record.model_dump()) == ["migraine"]
    assert (extraction.usage.cache_hits, extraction.usage.calls) == (1, 0)
    assert (tmp_path / "live" / "records.jsonl").read_text(encoding="utf-8").strip() == (
        extraction.record.model_copy(update={"provenance": backend.provenance()}).model_dump_json())


def test_server_refusing_json_schema_gets_json_object_with_the_schema(tmp_path: Path) -> None:
    for name in ("november", "oscar"):
        (tmp_path / f"{name}.txt").write_text(f"Inclusion Criteria:\n1. Diagnosis of {name} otitis\n", encoding="utf-8")
    with FaultServer(json_schema_format=False) as server:
        config = RunConfig(backend="openai", base_url=server.url, model="scripted", cache_mode="off")
        result = run([tmp_path], tmp_path / "out", config)
    formats = [r["body"]["response_format"] for r in server.requests]
    assert [f["type"] for f in formats] == ["json_schema", "json_object", "json_object"]  # negotiated once
    assert formats[1]["schema"]["additionalProperties"]["items"]["required"] == ["t", "y"]
    assert (result.usage.calls, result.usage.retries, result.failures) == (2, 0, [])


def test_requests_in_flight_when_json_schema_is_refused_fall_back_too(tmp_path: Path) -> None:
    """Four workers all ask with json_schema before the first refusal comes back (llama-cpp-python's
    server at --concurrency 4): every one of them must switch to json_object, none may fail."""
    names = ("papa", "quebec", "romeo", "sierra")
    for name in names:
        criteria = f"Inclusion Criteria:\n1. Diagnosis of {name} sinusitis\n"
        (tmp_path / f"{name}.txt").write_text(criteria, encoding="utf-8")
    with FaultServer(json_schema_format=False, refuse_together=len(names)) as server:
        config = RunConfig(backend="openai", base_url=server.url, model="scripted", cache_mode="off",
                           concurrency=len(names))
        result = run([tmp_path], tmp_path / "out", config)
    types = sorted(r["body"]["response_format"]["type"] for r in server.requests)
    assert types == ["json_object"] * 4 + ["json_schema"] * 4
    assert (result.failures, result.usage.calls) == ([], 4)
    assert sorted(entity_texts(r)[0] for r in records(tmp_path / "out").values()) == ["sinusitis"] * 4


def test_retry_after_header_forms() -> None:
    def rate_limited(**headers: str) -> SimpleNamespace:  # what retry_after reads of an openai.APIStatusError
        return SimpleNamespace(response=SimpleNamespace(headers=headers))

    assert retry_after(rate_limited(**{"retry-after": "2.5"})) == 2.5
    assert retry_after(rate_limited(**{"retry-after-ms": "1500"})) == 1.5
    assert retry_after(rate_limited(**{"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0  # in the past
    assert retry_after(rate_limited(**{"retry-after": "soon"})) is None
    assert retry_after(rate_limited()) is None


def test_timeout_bounds_a_whole_request_even_when_the_server_trickles(tmp_path: Path) -> None:
    """A server sending its answer a byte at a time never lets one read time out: the request must
    still end at `timeout`, be retried, and get the next (prompt) answer."""
    (tmp_path / "uniform.txt").write_text("Inclusion Criteria:\n1. Diagnosis of uniform uveitis\n", encoding="utf-8")
    with FaultServer({"uniform": [trickled(0.1)]}) as server:
        config = RunConfig(backend="openai", base_url=server.url, model="scripted", timeout=1.0, cache_mode="off")
        started = time.monotonic()
        result = run([tmp_path / "uniform.txt"], tmp_path / "out", config)
        elapsed = time.monotonic() - started
    assert (len(server.requests), result.usage.retries, result.failures) == (2, 1, [])
    assert elapsed < 8  # the trickled answer alone would take over 20 s
    assert entity_texts(records(tmp_path / "out")["uniform"]) == ["uveitis"]


@pytest.mark.slow  # several seconds of real subprocess runs; CI runs the slow set
def test_a_document_deadline_stops_retries(tmp_path: Path) -> None:
    (tmp_path / "victor.txt").write_text("Inclusion Criteria:\n1. Diagnosis of victor vertigo\n", encoding="utf-8")
    with FaultServer({"victor": [error(503)] * 20}) as server:
        config = RunConfig(backend="openai", base_url=server.url, model="scripted", cache_mode="off",
                           max_transport_retries=20, document_timeout=1.0)
        started = time.monotonic()
        result = run([tmp_path / "victor.txt"], tmp_path / "out", config)
        elapsed = time.monotonic() - started
    assert [f.doc_id for f in result.failures] == ["victor"]
    assert "DeadlineExceeded" in result.failures[0].error and "deadline of 1 s" in result.failures[0].error
    assert elapsed < 10 and len(server.requests) < 20


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_endpoint_fails_fast_and_names_the_redacted_url(tmp_path: Path) -> None:
    for name in ("whiskey", "xray", "yankee"):
        criteria = f"Inclusion Criteria:\n1. Diagnosis of {name} xerosis\n"
        (tmp_path / f"{name}.txt").write_text(criteria, encoding="utf-8")
    url = f"http://user:pa55word-secret@127.0.0.1:{closed_port()}/v1"
    config = RunConfig(backend="openai", base_url=url, model="scripted", cache_mode="off", max_transport_retries=5)
    started = time.monotonic()
    result = run([tmp_path], tmp_path / "out", config)
    elapsed = time.monotonic() - started
    assert sorted(f.doc_id for f in result.failures) == ["whiskey", "xray", "yankee"]
    assert elapsed < 3  # not five backed-off retries per document
    assert result.usage.retries == 0
    for failure in result.failures:
        assert "EndpointUnreachable" in failure.error
        assert f"http://user:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in failure.error
        assert "pa55word-secret" not in failure.error
