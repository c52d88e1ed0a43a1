"""End to end through real HTTP: `trialstruct run seeds --backend openai` against llama_cpp.server.

The server runs the bundled SmolLM2-135M, a weak model: the test checks the plumbing (wire
format, schema-constrained decoding, grounding, provenance, usage), not answer quality. Answers
are kept short (max_tokens 48) so the run stays within minutes on a small CPU.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SEEDS
from tests.llama_server import MODEL_ALIAS, llama_server, require_llama_server

pytestmark = pytest.mark.slow  # a real model generates: minutes on a small CPU; CI runs it (-m slow)


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    model = require_llama_server()
    with llama_server(model, tmp_path_factory.mktemp("server") / "server.log") as url:
        yield url


@pytest.fixture(scope="module")
def seeds_run(server_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess]:
    work = tmp_path_factory.mktemp("run")
    (work / "settings.toml").write_text("max_reasks = 1\n", encoding="utf-8")
    command = [sys.executable, "-m", "pipeline", "run", str(SEEDS), "-o", str(work / "out"), "--backend", "openai",
               "--base-url", server_url, "--model", MODEL_ALIAS, "--max-tokens", "48", "--no-cache",
               "--config", str(work / "settings.toml")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=work)
    return work / "out", done


def load_records(outdir: Path) -> list[dict]:
    return [json.loads(line) for line in (outdir / "records.jsonl").read_text(encoding="utf-8").splitlines()]


def test_every_seed_is_extracted(seeds_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    outdir, done = seeds_run
    assert done.returncode == 0, done.stderr[-2000:]
    assert (outdir / "errors.jsonl").read_text(encoding="utf-8") == ""
    assert len(load_records(outdir)) == len(list(SEEDS.glob("*.txt")))


def test_all_spans_are_exact_slices_inside_their_criterion(seeds_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    outdir, _ = seeds_run
    entities = 0
    for record in load_records(outdir):
        source = record["source_text"]
        for criterion in record["criteria"]:
            for entity in criterion["entities"]:
                entities += 1
                assert re.fullmatch(re.escape(criterion["id"]) + r"\.e\d+", entity["id"])
                assert criterion["start"] <= entity["start"] < entity["end"] <= criterion["end"]
                for span in (entity, entity["value"], entity["temporal"]):
                    if span is not None:
                        assert source[span["start"] : span["end"]] == span["text"]
    assert entities > 0


def test_provenance_and_usage_are_filled(seeds_run: tuple[Path, subprocess.CompletedProcess]) -> None:
    outdir, _ = seeds_run
    records = load_records(outdir)
    for record in records:
        provenance = record["provenance"]
        assert (provenance["backend"], provenance["model"], provenance["prompt_version"]) == (
            "openai", MODEL_ALIAS, "extract-v2")
        assert re.fullmatch(r"[0-9a-f]{64}", provenance["prompt_hash"])
    usage = json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))["usage"]
    assert usage["calls"] > 0 and usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    dropped = sum(w.startswith("dropped entity") for r in records for w in r["warnings"])
    assert usage["dropped_entities"] == dropped
