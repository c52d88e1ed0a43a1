"""`trialstruct run --backend openai --concurrency 4` against llama.cpp's own `llama-server --parallel 4`.

The real C++ server (continuous batching over its slots) serves the bundled SmolLM2-135M. Its answers
are weak, so the test checks the pipeline's behaviour, not the model's quality: every document gets
exactly one outcome (a valid record with exact spans, or one line in errors.jsonl), the manifest
accounts for every call, and the server really decoded several of our requests at once. Skips when
no llama-server binary is found (build it with benchmarks/build_llama_server.sh).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.schema import TrialRecord
from tests.conftest import SEEDS
from tests.llama_server import MODEL_ALIAS, llama_cpp_server, require_llama_cpp_server

pytestmark = pytest.mark.slow  # a real model generates: minutes on a small CPU

SLOTS = 4


@dataclass
class ServedRun:
    outdir: Path
    done: subprocess.CompletedProcess
    busy_slots: int  # the most slots seen decoding at the same moment


@contextmanager
def busiest(url: str) -> Iterator[list[int]]:
    """Poll the server's /slots while the block runs; yields a list holding the most slots seen busy at once."""
    most = [0]
    stop = threading.Event()
    slots_url = url.removesuffix("/v1") + "/slots"

    def poll() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(slots_url, timeout=5) as response:
                    slots = json.loads(response.read())
            except (urllib.error.URLError, TimeoutError):  # a busy moment: look again
                continue
            most[0] = max(most[0], sum(slot["is_processing"] for slot in slots))
            time.sleep(0.1)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        yield most
    finally:
        stop.set()
        watcher.join(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServedRun:
    binary, model = require_llama_cpp_server()
    work = tmp_path_factory.mktemp("served")
    with llama_cpp_server(binary, model, work / "server.log", parallel=SLOTS) as url:
        command = [sys.executable, "-m", "pipeline", "run", str(SEEDS), "-o", str(work / "out"), "--backend",
                   "openai", "--base-url", url, "--model", MODEL_ALIAS, "--concurrency", str(SLOTS),
                   "--max-tokens", "48", "--max-reasks", "1", "--no-cache"]
        with busiest(url) as most:
            done = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=work)
    return ServedRun(work / "out", done, most[0])


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_document_gets_one_outcome(served: ServedRun) -> None:
    assert served.done.returncode in (0, 1), served.done.stderr[-2000:]  # 1: some document failed, the rest written
    records, errors = lines(served.outdir / "records.jsonl"), lines(served.outdir / "errors.jsonl")
    seeds = len(list(SEEDS.glob("*.txt")))
    assert len(records) + len(errors) == seeds
    assert len({r["doc_id"] for r in records} | {e["doc_id"] for e in errors}) == seeds
    assert (served.done.returncode == 0) == (not errors)
    assert len(records) > 0


def test_records_are_valid_with_exact_spans(served: ServedRun) -> None:
    for line in lines(served.outdir / "records.jsonl"):
        record = TrialRecord.model_validate(line)  # the schema refuses a span that is not its source slice
        assert (record.provenance.backend, record.provenance.model) == ("openai", MODEL_ALIAS)
        for entity in record.entities():
            assert record.source_text[entity.start:entity.end] == entity.text


def test_the_manifest_accounts_for_every_call(served: ServedRun) -> None:
    manifest = json.loads((served.outdir / "manifest.json").read_text(encoding="utf-8"))
    usage, per_document = manifest["usage"], manifest["usage_per_document"]
    assert usage["calls"] > 0 and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert sum(u["calls"] for u in per_document.values()) == usage["calls"]
    assert manifest["counts"]["records"] == len(lines(served.outdir / "records.jsonl"))


def test_the_server_decoded_requests_together(served: ServedRun) -> None:
    assert served.busy_slots >= 2
