"""The Batch API flow against a Batch API server of our own on loopback, with the real `openai` client.

The reference is a synchronous run against `FaultServer` with the same scripts: the batch run must
write the same records.jsonl byte for byte, however its batches fail, expire or repeat lines.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from pipeline.batch import cancel, collect, status, submit
from pipeline.batch.state import STATE, split_lines
from pipeline.batch.transport import request_id, request_line
from pipeline.config import RunConfig
from pipeline.errors import ConfigError, RunError
from pipeline.run import run
from tests.batch_server import BatchServer
from tests.conftest import SEEDS
from tests.fault_server import Action, FaultServer, answer, content, error, truncated

DOCS = {
    "alpha": ["Diagnosis of alpha asthma"],
    "bravo": ["Diagnosis of bravo bronchitis", "No bravo measles"],  # two independent calls: one round
    "charlie": ["Diagnosis of charlie cholera"],
    "delta": ["Diagnosis of delta dengue"],
    "echo": ["Diagnosis of echo eczema"],
}

CALLS = sum(map(len, DOCS.values()))  # each criterion in its own call (see `settings`)


def entity(text: str) -> dict[str, object]:
    return {"criterion": "inc-1", "text": text, "type": "Condition", "negated": False, "value": None,
            "temporal": None}


def scripts() -> dict[str, list[Action]]:
    """charlie is re-asked once (an ungroundable entity), delta's first answer is a server error."""
    return {"charlie": [answer(entity("cholera"), entity("unicorn fever"))], "delta": [error(500)]}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("inputs")
    for name, criteria in DOCS.items():
        lines = "".join(f"{n}. {text}\n" for n, text in enumerate(criteria, start=1))
        (folder / f"{name}.txt").write_text(f"Inclusion Criteria:\n{lines}", encoding="utf-8")
    return folder


def settings(url: str, cache: Path) -> RunConfig:
    # a tiny batch budget puts each criterion in its own call
    return RunConfig(backend="openai", base_url=url, model="scripted", api_key="sk-test", timeout=5.0,
                     max_transport_retries=2, batch_token_budget=1, cache_dir=str(cache))


@pytest.fixture(scope="module")
def synchronous(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    work = tmp_path_factory.mktemp("sync")
    with FaultServer(scripts()) as server:
        run([inputs], work / "out", settings(server.url, work / "cache"))
    records = (work / "out" / "records.jsonl").read_bytes()
    assert records.count(b"\n") == len(DOCS)
    return records


def finish(outdir: Path, rounds: int = 8) -> int:
    """status --wait and collect until the run is assembled; returns how many collects it took."""
    for done in range(1, rounds + 1):
        status(outdir, wait=True, poll_max=0.01)
        if collect(outdir).result is not None:
            return done
    raise AssertionError(f"not finished after {rounds} rounds")


def sent_lines(server: BatchServer) -> list[dict]:
    return [json.loads(line) for f in server.files.values() if f["purpose"] == "batch"
            for line in f["content"].decode().splitlines()]


def test_batch_run_survives_expired_failed_and_partial_batches_and_matches_the_synchronous_run(
        inputs: Path, synchronous: bytes, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with BatchServer(scripts(), fates=["expired", "failed"], stray_line=True, duplicate_lines=True) as server:
        progress = submit([inputs], out, settings(server.url, tmp_path / "cache"))
        assert (progress.sent, progress.waiting, progress.result) == (CALLS, len(DOCS), None)
        collects = finish(out)
        assert collect(out).unknown_answers == 1  # the stray line, reported and ignored
    assert (out / "records.jsonl").read_bytes() == synchronous
    assert collects == 4  # expired, failed, the rest (delta's error), then delta's resend and charlie's re-ask
    assert [b["status"] for b in server.batches.values()][:2] == ["expired", "failed"]
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["records"] == len(DOCS)
    assert manifest["batch"]["batch_discount"] == 0.5
    answered = sum(b["request_counts"]["completed"] for b in server.batches.values())
    assert manifest["batch"]["usage"]["requests"] == answered  # neither the stray line nor duplicates count
    assert manifest["batch"]["usage"]["prompt_tokens"] > 0
    # a request that was answered is never sent again; a body is sent under its own hash
    lines = sent_lines(server)
    assert all(line["custom_id"] == request_id(line["body"]) for line in lines)
    outputs = [json.loads(line) for f in server.files.values() if f["filename"].endswith("output_file_id.jsonl")
               for line in f["content"].decode().splitlines()]
    answered_ids = {o["custom_id"] for o in outputs} - {"never-sent"}
    times_sent = Counter(line["custom_id"] for line in lines)
    assert all(times_sent[custom_id] == 1 for custom_id in answered_ids - expired_or_failed(server))


@pytest.mark.parametrize(("scripted", "rounds"), [({}, 1), ({"Bohan-Peter": [content("not json")]}, 2)])
def test_every_independent_call_of_a_document_goes_out_in_the_first_round(
        scripted: dict[str, list[Action]], rounds: int, tmp_path: Path) -> None:
    """The seeds' criteria batches go out together; only a re-ask (of an answer that is not JSON) waits a round.

    A small batch budget gives each seed 3 or 4 calls; each used to take a round of its own.
    """
    config = RunConfig(backend="openai", model="scripted", api_key="sk-test", max_transport_retries=2,
                       batch_token_budget=300)
    with FaultServer(dict(scripted)) as server:
        run([SEEDS], tmp_path / "sync", config.with_changes(base_url=server.url, cache_dir=str(tmp_path / "c1")))
        calls = [u["calls"] for u in json.loads((tmp_path / "sync" / "manifest.json").read_text())[
            "usage_per_document"].values()]
        first_answers = len(server.requests) - (rounds - 1)
    assert min(calls) >= 3
    out = tmp_path / "out"
    with BatchServer(dict(scripted)) as server:
        assert submit([SEEDS], out, config.with_changes(base_url=server.url, cache_dir=str(tmp_path / "c2"))).sent \
            == first_answers
        assert finish(out) == rounds
    assert json.loads((out / "manifest.json").read_text())["batch"]["rounds"] == rounds
    assert (out / "records.jsonl").read_bytes() == (tmp_path / "sync" / "records.jsonl").read_bytes()


def test_the_two_halves_of_an_answer_cut_off_at_its_first_criterion_go_out_together(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    lines = "".join(f"{n}. Diagnosis of foxtrot {word}\n" for n, word in enumerate(["flu", "fever", "fatigue"], 1))
    (tmp_path / "in" / "foxtrot.txt").write_text(f"Inclusion Criteria:\n{lines}", encoding="utf-8")
    config = RunConfig(backend="openai", model="scripted", api_key="sk-test", max_transport_retries=2)

    def scripted() -> dict[str, list[Action]]:
        return {"foxtrot": [truncated('{"inc-1": [{"t": "fl')]}  # nothing finished: inc-1, then inc-2 and inc-3

    with FaultServer(scripted()) as server:
        run([tmp_path / "in"], tmp_path / "sync",
            config.with_changes(base_url=server.url, cache_dir=str(tmp_path / "c1")))
        assert len(server.requests) == 3
    with BatchServer(scripted()) as server:
        submit([tmp_path / "in"], tmp_path / "out", config.with_changes(base_url=server.url,
                                                                         cache_dir=str(tmp_path / "c2")))
        assert finish(tmp_path / "out") == 2
    assert [b["request_counts"]["total"] for b in server.batches.values()] == [1, 2]  # the two halves together
    assert (tmp_path / "out" / "records.jsonl").read_bytes() == (tmp_path / "sync" / "records.jsonl").read_bytes()


def expired_or_failed(server: BatchServer) -> set[str]:
    """Ids of lines in the first two batches (expired, failed): those may legitimately be sent twice."""
    first_two = [server.files[b["input_file_id"]] for b in list(server.batches.values())[:2]]
    return {json.loads(line)["custom_id"] for f in first_two for line in f["content"].decode().splitlines()}


@pytest.mark.slow
def test_rerunning_each_step_sends_nothing_twice(inputs: Path, synchronous: bytes, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with BatchServer(scripts()) as server:
        config = settings(server.url, tmp_path / "cache")
        submit([inputs], out, config)
        assert submit([inputs], out, config).sent == 0
        assert len(server.batches) == 1
        status(out)
        status(out, wait=True, poll_max=0.01)
        collect(out)
        batches = len(server.batches)
        assert collect(out).sent == 0 and len(server.batches) == batches  # the follow-up is in flight already
        finish(out)
        records = (out / "records.jsonl").read_bytes()
        batches = len(server.batches)
        assert collect(out).result is not None and submit([inputs], out, config).result is not None
        assert len(server.batches) == batches
    assert records == synchronous == (out / "records.jsonl").read_bytes()


@pytest.mark.slow
def test_cancelled_batches_are_sent_again(inputs: Path, synchronous: bytes, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with BatchServer(scripts(), polls_to_finish=100) as server:
        submit([inputs], out, settings(server.url, tmp_path / "cache"))
        assert cancel(out) == 1
        server.polls_to_finish = 0
        assert collect(out).sent == CALLS
        finish(out)
    assert server.batches["batch_1"]["status"] == "cancelled"
    assert (out / "records.jsonl").read_bytes() == synchronous


@pytest.mark.slow
def test_sync_remainder_sends_the_rest_to_the_chat_endpoint(inputs: Path, synchronous: bytes, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with BatchServer(scripts()) as server:
        submit([inputs], out, settings(server.url, tmp_path / "cache"))
        status(out, wait=True, poll_max=0.01)
        assert collect(out, sync_remainder=True).result is not None
    assert len(server.batches) == 1
    assert len(server.requests) == 2  # charlie's re-ask, delta's retry
    assert (out / "records.jsonl").read_bytes() == synchronous


def test_a_different_run_into_the_same_directory_is_refused(inputs: Path, tmp_path: Path) -> None:
    with BatchServer() as server:
        config = settings(server.url, tmp_path / "cache")
        submit([inputs], tmp_path / "out", config)
        with pytest.raises(RunError, match="other inputs or settings"):
            submit([inputs], tmp_path / "out", config.with_changes(max_reasks=0))
        with pytest.raises(ConfigError, match="openai backend"):
            submit([inputs], tmp_path / "other", config.with_changes(backend="rules"))
    assert "sk-test" not in (tmp_path / "out" / "batch" / STATE).read_text(encoding="utf-8")


def test_relative_inputs_are_read_from_the_submit_directory(inputs: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(inputs.parent)
    with BatchServer() as server:
        submit([Path(inputs.name)], tmp_path / "out", settings(server.url, tmp_path / "cache"))
        monkeypatch.chdir(tmp_path)
        with pytest.raises(RunError, match=f"run this from {inputs.parent}"):
            collect(tmp_path / "out")


def test_request_files_split_at_the_limits_and_ids_ignore_key_order() -> None:
    lines = [request_line(request_id({"n": n}), {"n": n}) for n in range(5)]
    assert [len(chunk) for chunk in split_lines(lines, 2, 10_000)] == [2, 2, 1]
    size = len(lines[0].encode())
    assert [len(chunk) for chunk in split_lines(lines, 50_000, 2 * size + 1)] == [2, 2, 1]
    assert request_id({"a": 1, "b": [1, 2]}) == request_id({"b": [1, 2], "a": 1})


@pytest.mark.slow
def test_a_request_failing_three_times_fails_its_document_alone(tmp_path: Path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name in ("alpha", "echo"):
        (folder / f"{name}.txt").write_text(f"Inclusion Criteria:\n1. Diagnosis of {name} asthma\n", encoding="utf-8")
    out = tmp_path / "out"
    with BatchServer({"echo": [error(400)] * 3}) as server:
        submit([folder], out, settings(server.url, tmp_path / "cache"))
        assert finish(out) == 3
    assert [json.loads(line)["doc_id"] for line in (out / "records.jsonl").read_text().splitlines()] == ["alpha"]
    [failure] = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert failure["doc_id"] == "echo" and "Error code: 400" in failure["error"]
