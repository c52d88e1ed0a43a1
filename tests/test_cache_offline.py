"""The model cache in real runs of the openai backend against a scripted HTTP server on 127.0.0.1:
what is stored, what hits, offline replay without a socket, recordings, and SIGKILL with a model."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.cache import ModelCache
from pipeline.config import RunConfig
from pipeline.run import run
from tests.fault_server import FaultServer, answer

DOCS = {
    "alpha": "Diagnosis of alpha asthma",
    "bravo": "Diagnosis of bravo bronchitis",
    "charlie": "Diagnosis of charlie cholera",
    "delta": "History of delta dengue",
}
AUDITED_RUN = """
import sys
log = open(sys.argv[1], "a")
def hook(event, args):
    if event == "socket.connect":
        log.write(repr(args[1]) + "\\n"); log.flush()
sys.addaudithook(hook)
from pipeline.cli import app
app(args=sys.argv[2:], prog_name="trialstruct")
"""


def write_docs(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / f"{name}.txt").write_text(f"Inclusion Criteria:\n1. {DOCS[name]}\n", encoding="utf-8")
    return folder


def config_for(server: FaultServer, cache_dir: Path, **changes: object) -> RunConfig:
    base = RunConfig(backend="openai", base_url=server.url, model="scripted", api_key="sk-test", timeout=5.0,
                     cache_dir=str(cache_dir))
    return replace(base, **changes)


def cli_args(server: FaultServer, cache_dir: Path, *extra: str) -> list[str]:
    return ["--backend", "openai", "--base-url", server.url, "--model", "scripted", "--cache-dir", str(cache_dir),
            *extra]


def record_lines(outdir: Path) -> dict[str, str]:
    lines = (outdir / "records.jsonl").read_text(encoding="utf-8").splitlines()
    return {json.loads(line)["doc_id"]: line for line in lines}


def cached_entries(cache_dir: Path) -> list[dict]:
    with sqlite3.connect(cache_dir / "models.sqlite3") as conn:
        return [json.loads(text) for (text,) in conn.execute("SELECT entry FROM entries")]


def entity(text: str) -> dict:
    return {"t": text, "y": "Condition"}


def trialstruct(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def test_only_validated_successes_are_stored(tmp_path: Path) -> None:
    inputs = write_docs(tmp_path / "in", ["alpha", "bravo", "charlie"])
    scripts = {
        "bravo": [answer(entity("unicorn fever")), answer(entity("bronchitis"))],
        "charlie": [answer(entity("cholera"), entity("unicorn fever"))] * 3,
    }
    with FaultServer(scripts) as server:
        run([inputs], tmp_path / "out", config_for(server, tmp_path / "cache", max_reasks=2))
        assert len(server.requests) == 1 + 2 + 2  # charlie's re-ask repeats its error: not asked a third time
    entries = cached_entries(tmp_path / "cache")
    stored = {e["request"]["messages"][-1]["content"]: e for e in entries}
    assert len(entries) == 3  # one entry per call outcome; the re-ask intermediates are not stored
    bravo = stored["[inc-1] Diagnosis of bravo bronchitis"]
    assert bravo["grounded"] is True
    assert bravo["parsed"]["inc-1"][0]["t"] == "bronchitis"
    assert "unicorn" not in json.dumps(bravo)
    charlie = stored["[inc-1] Diagnosis of charlie cholera"]
    assert charlie["grounded"] is False  # re-asks ran out: the outcome is kept, flagged, for replay
    assert stored["[inc-1] Diagnosis of alpha asthma"]["grounded"] is True
    assert bravo["model_fingerprint"] == "fault-server" and bravo["usage"]["prompt_tokens"] > 0
    assert "sk-test" not in json.dumps(entries)


def test_a_run_with_dropped_entities_replays_offline_to_the_same_bytes(tmp_path: Path) -> None:
    inputs = write_docs(tmp_path / "in", ["alpha", "charlie"])
    scripts = {"charlie": [answer(entity("cholera"), entity("unicorn fever"))] * 3}
    with FaultServer(scripts) as server:
        run([inputs], tmp_path / "live", config_for(server, tmp_path / "cache", max_reasks=2))
        live_requests = len(server.requests)
        replay = run([inputs], tmp_path / "replay", config_for(server, tmp_path / "cache", max_reasks=2,
                                                                cache_mode="offline"))
        assert len(server.requests) == live_requests
    assert replay.failures == []
    live = (tmp_path / "live" / "records.jsonl").read_bytes()
    assert live == (tmp_path / "replay" / "records.jsonl").read_bytes()
    assert b"dropped entity" in live and b"unicorn fever" in live


def test_transport_settings_hit_and_sampling_settings_miss(tmp_path: Path) -> None:
    inputs = write_docs(tmp_path / "in", ["alpha", "bravo"])
    with FaultServer() as server:
        first = run([inputs], tmp_path / "a", config_for(server, tmp_path / "cache"))
        assert (first.cache_hits, first.cache_misses, len(server.requests)) == (0, 2, 2)
        rotated = run([inputs], tmp_path / "b", config_for(server, tmp_path / "cache", api_key="sk-other", timeout=9.0))
        assert (rotated.cache_hits, len(server.requests)) == (2, 2)
        assert (tmp_path / "a" / "records.jsonl").read_bytes() == (tmp_path / "b" / "records.jsonl").read_bytes()
        warmer = run([inputs], tmp_path / "c", config_for(server, tmp_path / "cache", temperature=0.5))
        assert (warmer.cache_hits, len(server.requests)) == (0, 4)
        refreshed = run([inputs], tmp_path / "d", config_for(server, tmp_path / "cache", cache_mode="refresh"))
        assert (refreshed.cache_hits, len(server.requests)) == (0, 6)
        uncached = run([inputs], tmp_path / "e", config_for(server, tmp_path / "nocache", cache_mode="off"))
        assert len(server.requests) == 8 and not (tmp_path / "nocache").exists()
    assert uncached.cache_hits == 0
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["cache"]["hits"] == 2 and manifest["cache"]["keys"] == 2
    assert "sk-other" not in json.dumps(manifest)


def test_offline_miss_names_the_documents_opens_no_socket_and_writes_the_rest(tmp_path: Path) -> None:
    inputs = write_docs(tmp_path / "in", ["alpha", "bravo"])
    connects = tmp_path / "connects.log"
    with FaultServer() as server:
        run([inputs], tmp_path / "online", config_for(server, tmp_path / "cache"))
        write_docs(inputs, ["charlie", "delta"])
        before = len(server.requests)
        args = ["run", str(inputs), "-o", str(tmp_path / "offline"), *cli_args(server, tmp_path / "cache", "--offline")]
        done = subprocess.run([sys.executable, "-c", AUDITED_RUN, str(connects), *args], capture_output=True,
                              text=True, timeout=300, check=False)
        assert len(server.requests) == before
    assert not connects.exists() or connects.read_text() == ""
    assert done.returncode == 1, done.stderr
    assert "--offline: 2 document(s) need model calls that are not cached: charlie, delta" in done.stderr
    assert "without --offline" in done.stderr and "trialstruct cache import FILE.jsonl" in done.stderr
    online, offline = record_lines(tmp_path / "online"), record_lines(tmp_path / "offline")
    assert offline == online
    errors = [json.loads(line) for line in (tmp_path / "offline" / "errors.jsonl").read_text().splitlines()]
    assert [e["doc_id"] for e in errors] == ["charlie", "delta"]


def test_the_audit_hook_does_see_a_connection(tmp_path: Path) -> None:
    """The check above could pass vacuously if the hook never fired; an online run proves it fires."""
    connects = tmp_path / "connects.log"
    inputs = write_docs(tmp_path / "in", ["alpha"])
    with FaultServer() as server:
        args = ["run", str(inputs), "-o", str(tmp_path / "out"), *cli_args(server, tmp_path / "cache")]
        subprocess.run([sys.executable, "-c", AUDITED_RUN, str(connects), *args], capture_output=True, text=True,
                       timeout=300, check=False)
    assert "127.0.0.1" in connects.read_text()


def test_export_import_into_an_empty_cache_then_offline_replay(tmp_path: Path) -> None:
    inputs = write_docs(tmp_path / "in", list(DOCS))
    recording = tmp_path / "evals" / "recording.jsonl"
    with FaultServer() as server:
        url = server.url
        run([inputs], tmp_path / "online", config_for(server, tmp_path / "cache"))
        unrelated = write_docs(tmp_path / "other", ["delta"])
        (unrelated / "delta.txt").write_text("Inclusion Criteria:\n1. Unrelated echo eczema\n", encoding="utf-8")
        run([unrelated], tmp_path / "unrelated", config_for(server, tmp_path / "cache"))
    exported = trialstruct("cache", "export", "--for", str(tmp_path / "online"), "-o", str(recording),
                           "--cache-dir", str(tmp_path / "cache"))
    assert exported.returncode == 0, exported.stderr
    lines = recording.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4 and lines == sorted(lines)
    assert (tmp_path / "online" / "cache-keys.txt").read_text().split() == [json.loads(x)["key"] for x in lines]
    imported = trialstruct("cache", "import", str(recording), "--cache-dir", str(tmp_path / "fresh"))
    assert imported.returncode == 0 and "imported 4 entries" in imported.stdout
    replay = trialstruct("run", str(inputs), "-o", str(tmp_path / "replay"), "--backend", "openai", "--base-url", url,
                         "--model", "scripted", "--cache-dir", str(tmp_path / "fresh"), "--offline")
    assert replay.returncode == 0, replay.stderr
    assert (tmp_path / "replay" / "records.jsonl").read_bytes() == (tmp_path / "online" / "records.jsonl").read_bytes()
    with ModelCache(tmp_path / "fresh" / "models.sqlite3") as fresh:
        assert fresh.count() == 4


@pytest.mark.parametrize("delay", [0.8, pytest.param(1.6, marks=pytest.mark.slow)])
def test_sigkill_during_a_model_run_then_resume(tmp_path: Path, delay: float) -> None:
    names = [f"doc{n:02d}" for n in range(24)]
    inputs = tmp_path / "in"
    inputs.mkdir()
    for n, name in enumerate(names):
        (inputs / f"{name}.txt").write_text(f"Inclusion Criteria:\n1. History of disease number{n}\n",
                                            encoding="utf-8")
    with FaultServer() as server:
        run([inputs], tmp_path / "whole", config_for(server, tmp_path / "cache-whole"))
        args = ["run", str(inputs), "-o", str(tmp_path / "killed"),
                *cli_args(server, tmp_path / "cache-killed", "--concurrency", "2")]
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        resumed = trialstruct(*args)
        assert resumed.returncode == 0, resumed.stderr
    for name in ("records.jsonl", "errors.jsonl", "cache-keys.txt"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
