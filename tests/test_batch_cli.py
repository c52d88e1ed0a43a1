"""`trialstruct batch` on the seeds, killed with SIGKILL in the middle of its API calls, every step rerun.

The Batch API server carries out an upload or a batch creation and then hangs, as a server does
when the client dies before the answer arrives; the client is killed there. The rerun must find
what the server did instead of doing it again, and the final records must be byte-identical to a
synchronous run against the same scripted answers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.config import RunConfig
from pipeline.run import run
from tests.batch_server import BatchServer, wait_for
from tests.conftest import SEEDS
from tests.fault_server import Action, FaultServer, content, error

pytestmark = pytest.mark.slow


def scripts() -> dict[str, list[Action]]:
    """One answer that is not JSON (re-asked), one server error (resent), in two seeds."""
    return {"Bohan-Peter": [content("not json")], "cyclosporine": [error(500)]}


def options(url: str, cache: Path) -> list[str]:
    return ["--backend", "openai", "--base-url", url, "--model", "scripted", "--cache-dir", str(cache),
            "--max-transport-retries", "2"]


def batch(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "pipeline", "batch", *args], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OPENAI_API_KEY": "sk-test"})
    assert not check or done.returncode == 0, done.stderr[-3000:]
    return done


def killed_while(server: BatchServer, condition: object, *args: str) -> None:
    """Start `batch ARGS`, SIGKILL it once `condition()` holds (the server hangs after acting)."""
    process = subprocess.Popen([sys.executable, "-m", "pipeline", "batch", *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env={**os.environ, "OPENAI_API_KEY": "sk-test"})
    try:
        wait_for(condition, timeout=120)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def uploads(server: BatchServer) -> int:
    return sum(f["purpose"] == "batch" for f in server.files.values())


def test_kill_9_mid_upload_and_mid_create_then_every_step_rerun(tmp_path: Path) -> None:
    with FaultServer(scripts()) as sync_server:
        run([SEEDS], tmp_path / "sync", RunConfig(backend="openai", base_url=sync_server.url, model="scripted",
                                                  api_key="sk-test", cache_dir=str(tmp_path / "sync-cache"),
                                                  max_transport_retries=2))
    synchronous = (tmp_path / "sync" / "records.jsonl").read_bytes()

    out = tmp_path / "out"
    with BatchServer(scripts(), hang_after={"upload", "create"}) as server:
        submit = ["submit", str(SEEDS), "-o", str(out), *options(server.url, tmp_path / "cache")]
        killed_while(server, lambda: uploads(server) == 1, *submit)
        state = json.loads((out / "batch" / "state.json").read_text(encoding="utf-8"))
        assert state["files"][0]["upload_started"] and state["files"][0]["file_id"] is None
        killed_while(server, lambda: len(server.batches) == 1, *submit)
        batch(*submit)
        batch(*submit)
        assert (uploads(server), len(server.batches)) == (1, 1)  # found again, never repeated

        batch("status", str(out))
        batch("status", str(out), "--wait", "--poll-max", "0.05")
        server.hang_after = {"upload"}  # the follow-up batch (re-ask and resend): killed mid-upload
        killed_while(server, lambda: uploads(server) == 2, "collect", str(out))
        for _ in range(10):
            batch("status", str(out), "--wait", "--poll-max", "0.05")
            if (out / "records.jsonl").exists() and json.loads(
                    (out / "batch" / "state.json").read_text(encoding="utf-8"))["complete"]:
                break
            batch("collect", str(out))
        server.release()
        sent = (uploads(server), len(server.batches))
        batch("collect", str(out))
        batch(*submit)
        assert (uploads(server), len(server.batches)) == sent
    assert (out / "records.jsonl").read_bytes() == synchronous
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    print("batch summary:", json.dumps({k: v for k, v in manifest["batch"].items() if k != "batches"}))
    summary = manifest["batch"]
    assert summary["rounds"] >= 2  # the re-ask and the resent request need a follow-up round
    assert summary["usage"]["requests"] == sum(b["request_counts"]["completed"] for b in server.batches.values())
