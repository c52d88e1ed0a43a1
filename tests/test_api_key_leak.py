"""The API key reaches the endpoint and nothing the run writes: records, errors, manifest, cache, logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fault_server import FaultServer, error

SENTINEL = "sk-sentinel-7f3a9c1e5b2d4086"


def test_no_api_key_in_any_output(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "kilo.txt").write_text("Inclusion Criteria:\n1. Diagnosis of kilo keratitis\n", encoding="utf-8")
    (inputs / "lima.txt").write_text("Inclusion Criteria:\n1. Diagnosis of lima lupus\n", encoding="utf-8")
    outdir, cache = tmp_path / "out", tmp_path / "cache"
    env = {**os.environ, "OPENAI_API_KEY": SENTINEL, "TRIALSTRUCT_CACHE_DIR": str(cache)}
    with FaultServer({"lima": [error(401, echo_headers=True)]}) as server:
        command = [sys.executable, "-m", "pipeline", "run", str(inputs), "-o", str(outdir), "--backend", "openai",
                   "--base-url", server.url, "--model", "scripted"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert [r["headers"]["authorization"] for r in server.requests] == [f"Bearer {SENTINEL}"] * 2
    assert "lima" in (outdir / "errors.jsonl").read_text(encoding="utf-8")  # the echoed key was in an error
    assert "keratitis" in (outdir / "records.jsonl").read_text(encoding="utf-8")
    written = [p for p in [*outdir.rglob("*"), *cache.rglob("*")] if p.is_file()]
    assert any(p.suffix in {".db", ".sqlite"} or "cache" in p.name for p in written)
    leaks = [str(p) for p in written if SENTINEL.encode() in p.read_bytes()]
    assert leaks == []
    assert SENTINEL not in done.stdout + done.stderr
