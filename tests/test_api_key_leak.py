"""The API key reaches the endpoint and nothing the run writes: records, errors, manifest, cache, logs.

The endpoint is careless twice: it quotes the request headers (Authorization included) in an
error, and in an answer, whose entity text then lands in a warning and the cached response.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipeline.redact import redact_text, redact_url
from tests.fault_server import Action, FaultServer, error

SENTINEL = "sk-sentinel-7f3a9c1e5b2d4086"
URL_SENTINEL = "az-sentinel-0c4e8a2f6b1d"  # a credential inside the base URL (Azure's ?api-key=)


def test_no_api_key_in_any_output(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "kilo.txt").write_text("Inclusion Criteria:\n1. Diagnosis of kilo keratitis\n", encoding="utf-8")
    (inputs / "lima.txt").write_text("Inclusion Criteria:\n1. Diagnosis of lima lupus\n", encoding="utf-8")
    (inputs / "mike.txt").write_text("Inclusion Criteria:\n1. Diagnosis of mike myopia\n", encoding="utf-8")
    outdir, cache = tmp_path / "out", tmp_path / "cache"
    env = {**os.environ, "OPENAI_API_KEY": SENTINEL, "TRIALSTRUCT_CACHE_DIR": str(cache)}
    scripts = {"lima": [error(401, echo_headers=True)], "mike": [Action(echo_headers=True)] * 3}
    with FaultServer(scripts) as server:
        command = [sys.executable, "-m", "pipeline", "run", str(inputs), "-o", str(outdir), "--backend", "openai",
                   "--base-url", f"{server.url}?api-key={URL_SENTINEL}", "--model", "scripted"]
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert {r["headers"]["authorization"] for r in server.requests} == {f"Bearer {SENTINEL}"}
    assert "lima" in (outdir / "errors.jsonl").read_text(encoding="utf-8")  # the echoed key was in an error
    written_records = (outdir / "records.jsonl").read_text(encoding="utf-8")
    assert "keratitis" in written_records
    assert "dropped entity" in written_records and "Bearer ***" in written_records  # the echo, masked
    written = [p for p in [*outdir.rglob("*"), *cache.rglob("*")] if p.is_file()]
    assert any(p.suffix in {".db", ".sqlite"} or "cache" in p.name for p in written)
    for secret in (SENTINEL, URL_SENTINEL):
        leaks = [str(p) for p in written if secret.encode() in p.read_bytes()]
        assert leaks == []
        assert secret not in done.stdout + done.stderr
    assert "api-key=***" in (outdir / "manifest.json").read_text(encoding="utf-8")


def test_redact_url_masks_userinfo_and_credential_parameters() -> None:
    assert redact_url("https://user:s3cret-pass@llm.example/v1?api-version=2024&api-key=abcd1234") == (
        "https://user:***@llm.example/v1?api-version=2024&api-key=***")
    assert redact_url("https://tok3n-only@llm.example/v1") == "https://***@llm.example/v1"
    assert redact_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"
    assert redact_url(None) is None


def test_redact_text_masks_every_secret_longest_first() -> None:
    text = "Bearer sk-abc-long and sk-abc and ok"
    assert redact_text(text, ["sk-abc", "sk-abc-long", None, "ok"]) == "Bearer *** and *** and ok"  # 'ok': too short
