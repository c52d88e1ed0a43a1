"""Recordings as cassettes: record against a real HTTP endpoint, replay offline, and a prompt edit that
makes the recording stale fails the gate with one line whose command re-records it."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest

from pipeline.extract.llm import load_prompt
from tests.prompt_eval_fixtures import PromptScriptedServer, careful_variant, trialstruct, write_gold_set

RECORDING = "evals/recordings/seeds.jsonl"


@pytest.fixture
def workspace(tmp_path: Path) -> dict:
    write_gold_set(tmp_path)
    careful_variant(tmp_path, "mine")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIALSTRUCT_", "OPENAI_"))}
    env |= {"OPENAI_API_KEY": "sk-test-cassette", "TRIALSTRUCT_CACHE_DIR": str(tmp_path / "cache")}
    return {"root": tmp_path, "env": env}


def recorded_and_baselined(ws: dict, server: PromptScriptedServer) -> list[str]:
    """Record the run, make its baseline from the replay; returns the options that select the run."""
    root, env = ws["root"], ws["env"]
    run = ["--gold", "evals/gold", "--backend", "openai", "--base-url", server.url, "--model", "m",
           "--prompt", "prompts/mine", "--resamples", "50"]
    recorded = trialstruct("eval", *run, "--record", RECORDING, cwd=root, env=env)
    assert recorded.returncode == 0, recorded.stderr
    baselined = trialstruct("eval", *run, "--replay", RECORDING, "--baseline", "baseline.json", "--update-baseline",
                            cwd=root, env=env)
    assert baselined.returncode == 0, baselined.stderr
    return run


def test_record_writes_entries_and_their_prompt_identity(workspace):
    root = workspace["root"]
    with PromptScriptedServer() as server:
        run = recorded_and_baselined(workspace, server)
    lines = (root / RECORDING).read_text().splitlines()
    assert len(lines) == len(server.requests) == 6  # one call per document, each answer grounded first time
    meta = json.loads((root / "evals/recordings/seeds.meta.json").read_text())
    prompt = load_prompt(str(root / "prompts" / "mine"))
    assert meta["run"] == {"backend": "openai", "model": "m",
                           "prompt": {"name": "mine", "version": "mine", "hash": prompt.hash}}
    assert meta["entries"] == 6
    assert shlex.split(meta["command"])[:3] == ["trialstruct", "eval", "--gold"]
    assert "sk-test" not in (root / RECORDING).read_text() + json.dumps(meta)
    baseline = json.loads((root / "baseline.json").read_text())
    section = baseline["openai/m/mine"]
    assert section["run"] == meta["run"] and section["recording"] == RECORDING
    assert "entities.relaxed" in section["metrics"]
    assert not [m for m in section["metrics"] if m.startswith(("criteria.", "metadata."))]
    assert run  # the options used


@pytest.mark.slow  # several seconds of real subprocess runs; CI runs the slow set
def test_prompt_edit_makes_the_gate_say_stale_and_its_command_re_records(workspace):
    root, env = workspace["root"], workspace["env"]
    with PromptScriptedServer() as server:
        run = recorded_and_baselined(workspace, server)
        gate = [*run, "--replay", RECORDING, "--baseline", "baseline.json", "--check"]
        calls = len(server.requests)
        assert trialstruct("eval", *gate, cwd=root, env=env).returncode == 0

        system = root / "prompts" / "mine" / "system.txt"
        system.write_text(system.read_text() + "Keep entity phrases short.\n")
        stale = trialstruct("eval", *gate, "--markdown", "stale.md", "--json", "stale.json", cwd=root, env=env)
        assert stale.returncode == 1
        scored = json.loads((root / "stale.json").read_text())
        assert scored["offline_misses"] == ["d1", "d2", "d3", "d4", "d5", "d6"]
        assert scored["metrics"]["entities.relaxed"]["tp"] == 0
        assert scored["metrics"]["criteria.segmentation"]["f1"] == 1.0  # the segmenter ran; only the model calls missed
        [line] = stale.stderr.splitlines()
        assert line.startswith("prompt changed, recording stale: run trialstruct eval --gold evals/gold ")
        assert "REGRESSION" not in stale.stdout + stale.stderr
        assert len(server.requests) == calls  # replays never reach the endpoint
        markdown = (root / "stale.md").read_text()
        assert "**Gate: FAILED (recording stale)**" in markdown and f"- {line}" in markdown

        command = shlex.split(line.split(": run ", 1)[1])
        assert command[command.index("--record") + 1] == RECORDING and "--offline" not in command
        rerecorded = trialstruct(*command[1:], cwd=root, env=env)
        assert rerecorded.returncode == 0, rerecorded.stderr
        assert len(server.requests) == calls + 6
    meta = json.loads((root / "evals/recordings/seeds.meta.json").read_text())
    assert meta["run"]["prompt"]["hash"] == load_prompt(str(root / "prompts" / "mine")).hash
    replayed = trialstruct("eval", *gate, cwd=root, env=env)
    assert replayed.returncode == 0, replayed.stderr
    assert "gate passed" in replayed.stdout


@pytest.mark.slow  # several seconds of real subprocess runs; CI runs the slow set
def test_requests_changed_without_a_prompt_change_is_called_incomplete(workspace):
    root, env = workspace["root"], workspace["env"]
    with PromptScriptedServer() as server:
        run = recorded_and_baselined(workspace, server)
    changed = trialstruct("eval", *run, "--max-tokens", "777", "--replay", RECORDING, "--baseline", "baseline.json",
                          "--check", cwd=root, env=env)
    assert changed.returncode == 1
    [line] = changed.stderr.splitlines()
    assert line.startswith(f"recording incomplete: 6 document(s) need model calls that are not in {RECORDING} (d1, ")
    assert "the prompt is unchanged" in line
    assert line.endswith(f"--max-tokens 777 --prompt prompts/mine --record {RECORDING} "
                         "--baseline baseline.json --check")
