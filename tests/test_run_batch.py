"""Batch runs: resume, SIGKILL and SIGINT, concurrency, sharding and merge, rate limits."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.config import RunConfig
from pipeline.errors import RunError
from pipeline.run import Shard, run
from pipeline.run.journal import PARTS_DIR, Journal
from pipeline.run.limits import RateLimiter
from tests.conftest import SEEDS
from tests.fault_server import FaultServer, hang

OUTPUTS = ("records.jsonl", "errors.jsonl", "positions.json", "cache-keys.txt")


def trialstruct(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The five seed pages copied under distinct names (so distinct doc ids), plus two bad files.

    Shared by the module's tests, read only: a test that edits inputs copies them first."""
    folder = tmp_path_factory.mktemp("batch") / "inputs"
    folder.mkdir()
    for copy in range(30):
        for seed in sorted(SEEDS.glob("*.txt")):
            shutil.copy(seed, folder / f"{seed.stem}-{copy:03d}.txt")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(b"\x7fELF\x00\x00")
    return folder


def outputs(outdir: Path) -> dict[str, bytes]:
    return {name: (outdir / name).read_bytes() for name in OUTPUTS}


def manifest(outdir: Path) -> dict:
    return json.loads((outdir / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def reference_dir(inputs: Path) -> Path:
    """The output directory of one uninterrupted run (made once for the module; tests copy it)."""
    out = inputs.parent / "reference"
    result = run([inputs], out, RunConfig(backend="rules"))
    assert result.counts.records == 150 and len(result.failures) == 2
    return out


@pytest.fixture
def reference(reference_dir: Path) -> dict[str, bytes]:
    """Outputs of the uninterrupted run, to compare every other way of getting there against."""
    return outputs(reference_dir)


def test_rerun_into_the_same_outdir_resumes_everything(
    inputs: Path, tmp_path: Path, reference_dir: Path, reference: dict
) -> None:
    shutil.copytree(reference_dir, tmp_path / "again")
    result = run([inputs], tmp_path / "again", RunConfig(backend="rules"))
    assert (result.resumed, result.documents) == (150, 150)
    assert outputs(tmp_path / "again") == reference
    assert manifest(tmp_path / "again")["counts"]["resumed"] == 150
    assert manifest(tmp_path / "again")["run_id"] != manifest(reference_dir)["run_id"]


@pytest.mark.parametrize("settings", [{"concurrency": 4, "workers": 1}, {"workers": 3}, {"workers": 1}])
def test_threads_and_processes_keep_input_order_and_bytes(
    inputs: Path, tmp_path: Path, reference: dict, settings: dict
) -> None:
    run([inputs], tmp_path / "wide", RunConfig(backend="rules", **settings))
    assert outputs(tmp_path / "wide") == reference


def test_a_different_configuration_does_not_reuse_the_journal(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    run([inputs], out, RunConfig(backend="none"))
    result = run([inputs], out, RunConfig(backend="rules"))
    assert result.resumed == 0 and result.counts.entities > 0
    assert len(list((out / PARTS_DIR).glob("*.jsonl"))) == 2
    again = run([inputs], out, RunConfig(backend="rules", concurrency=3, timeout=5.0))
    assert again.resumed == 150


def test_an_edited_input_is_extracted_again(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    inputs = Path(shutil.copytree(inputs, tmp_path / "inputs"))
    run([inputs], out, RunConfig(backend="rules"))
    edited = inputs / "000_a830f8c2bc95e8a6-000.txt"
    edited.write_text(edited.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    result = run([inputs], out, RunConfig(backend="rules"))
    assert result.resumed == 149


@pytest.mark.parametrize("delay", [0.3, *(pytest.param(delay, marks=pytest.mark.slow) for delay in (0.9, 1.6))])
def test_sigkill_at_any_moment_then_rerun_gives_the_same_output(
    inputs: Path, tmp_path: Path, reference: dict, delay: float
) -> None:
    out = tmp_path / "killed"
    args = ("run", str(inputs), "-o", str(out), "--backend", "rules", "--concurrency", "2")
    proc = start(*args)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    resumed = trialstruct(*args)
    assert resumed.returncode == 1, resumed.stderr  # the two bad inputs
    assert outputs(out) == reference


def test_a_finished_run_keeps_an_index_not_a_second_copy_of_its_records(
    inputs: Path, tmp_path: Path, reference_dir: Path, reference: dict
) -> None:
    journal = next((reference_dir / PARTS_DIR).glob("*.jsonl"))
    lines = journal.read_bytes().splitlines()
    assert len(lines) == 151 and b"\t" not in journal.read_bytes()  # the records file's identity + one per record
    assert journal.stat().st_size < (reference_dir / "records.jsonl").stat().st_size / 20
    out = tmp_path / "edited"
    shutil.copytree(reference_dir, out)
    records = out / "records.jsonl"
    records.write_bytes(records.read_bytes().replace(b'"inc-1"', b'"inc-X"', 1))  # the index now points wrong
    result = run([inputs], out, RunConfig(backend="rules"))
    assert result.resumed == 0 and outputs(out) == reference


@pytest.mark.parametrize("kind", ["journal", "index"])
def test_a_torn_journal_line_is_cut_and_redone(
    inputs: Path, tmp_path: Path, reference_dir: Path, reference: dict, kind: str
) -> None:
    out = tmp_path / "torn"
    shutil.copytree(reference_dir, out)
    journal = next((out / PARTS_DIR).glob("*.jsonl"))
    if kind == "journal":  # as a killed run leaves it: full lines, no index
        keys = [json.loads(line)["doc"] for line in journal.read_bytes().splitlines()[1:]]
        record_lines = (out / "records.jsonl").read_bytes().splitlines(keepends=True)
        journal.write_bytes(b"".join(json.dumps({"doc": k, "keys": [], "usage": None, "n": [0, 0, 0]}).encode()
                                     + b"\t" + line for k, line in zip(keys, record_lines, strict=True)))
    lines = journal.read_bytes().splitlines(keepends=True)
    first = 1 if kind == "index" else 0
    journal.write_bytes(b"".join(lines[:first + 100]) + lines[first + 100][: len(lines[first + 100]) // 2])
    result = run([inputs], out, RunConfig(backend="rules"))
    assert result.resumed == 100
    assert outputs(out) == reference
    assert journal.read_bytes().count(b"\n") == 151


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), pytest.param(signal.SIGTERM, 143, marks=pytest.mark.slow)]
)
def test_a_signal_stops_after_the_documents_in_flight_writes_them_and_resumes(
    inputs: Path, tmp_path: Path, reference: dict, signum: signal.Signals, code: int
) -> None:
    out = tmp_path / "stopped"
    args = ("run", str(inputs), "-o", str(out), "--backend", "rules")
    proc = start(*args)
    deadline = time.monotonic() + 60
    while not any(j.stat().st_size for j in (out / PARTS_DIR).glob("*.jsonl")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    done = re.search(rf"interrupted by {signum.name}: (\d+) documents are done and saved in .*records.jsonl; "
                     "rerun the same command to resume", stderr)
    assert done and 0 < int(done.group(1)) < 150, stderr
    assert manifest(out)["status"] == "interrupted"
    finished = (out / "records.jsonl").read_bytes().splitlines(keepends=True)
    assert len(finished) == int(done.group(1)) == manifest(out)["counts"]["records"]
    assert set(finished) <= set(reference["records.jsonl"].splitlines(keepends=True))
    assert trialstruct(*args).returncode == 1
    assert outputs(out) == reference
    assert manifest(out)["counts"]["resumed"] == int(done.group(1))


@pytest.mark.slow
def test_shards_partition_the_inputs_and_merge_back(inputs: Path, tmp_path: Path, reference: dict) -> None:
    parts = [tmp_path / f"shard{i}" for i in (1, 2, 3)]
    for i, part in enumerate(parts, start=1):
        done = trialstruct("run", str(inputs), "-o", str(part), "--backend", "rules", "--shard", f"{i}/3")
        assert done.returncode in (0, 1), done.stderr
    sizes = [manifest(p)["counts"]["records"] for p in parts]
    assert sum(sizes) == 150 and all(30 < n < 70 for n in sizes)
    doc_ids = [{json.loads(line)["source"]["path"] for line in (p / "records.jsonl").open()} for p in parts]
    assert not (doc_ids[0] & doc_ids[1] or doc_ids[1] & doc_ids[2] or doc_ids[0] & doc_ids[2])
    merged = trialstruct("merge", *map(str, reversed(parts)), "-o", str(tmp_path / "merged"))
    assert merged.returncode == 0, merged.stderr
    assert outputs(tmp_path / "merged") == reference
    assert manifest(tmp_path / "merged")["counts"]["records"] == 150
    assert [m["shard"] for m in manifest(tmp_path / "merged")["merged_from"]] == ["1/3", "2/3", "3/3"]


def test_merge_refuses_an_incomplete_set(inputs: Path, tmp_path: Path) -> None:
    for i in (1, 3):
        trialstruct("run", str(inputs), "-o", str(tmp_path / f"s{i}"), "--backend", "none", "--shard", f"{i}/3")
    done = trialstruct("merge", str(tmp_path / "s1"), str(tmp_path / "s3"), "-o", str(tmp_path / "m"))
    assert done.returncode == 2
    assert "missing shard(s) 2/3" in done.stderr
    done = trialstruct("merge", str(tmp_path / "s1"), str(tmp_path / "nothing"), "-o", str(tmp_path / "m"))
    assert done.returncode == 2 and "nothing/manifest.json: missing" in done.stderr


def test_shard_assignment_is_stable_and_validated() -> None:
    names = [f"NCT{n:08d}" for n in range(3000)]
    owners = [[name for name in names if Shard(i, 4).owns(name)] for i in range(1, 5)]
    assert sorted(name for owned in owners for name in owned) == names
    assert all(600 < len(o) < 900 for o in owners)
    assert Shard.parse("2/4") == Shard(2, 4) and str(Shard(2, 4)) == "2/4"
    for bad in ("0/4", "5/4", "2", "a/b", "1/0"):
        with pytest.raises(ValueError, match="expected i/n"):
            Shard.parse(bad)


def test_a_second_run_into_a_busy_outdir_is_refused(inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    with Journal(out, "0" * 16, out / "records.jsonl"):
        with pytest.raises(RunError, match="another trialstruct run is writing"):
            run([inputs], out, RunConfig(backend="none"))
        done = trialstruct("run", str(inputs), "-o", str(out), "--backend", "none")
        assert done.returncode == 2 and "another trialstruct run is writing this output directory" in done.stderr


def test_rate_limiter_holds_requests_and_tokens_per_minute() -> None:
    now = [0.0]
    limiter = RateLimiter(requests_per_minute=60, tokens_per_minute=6000, clock=lambda: now[0])
    assert limiter.delay() == 0
    limiter.charge(requests=3, tokens=100)
    assert limiter.delay() == pytest.approx(3.0)
    now[0] = 2.0
    assert limiter.delay() == pytest.approx(1.0)
    limiter.charge(requests=0, tokens=500)  # tokens had refilled to one second's allowance (100), no more
    assert limiter.delay() == pytest.approx(4.0)
    now[0] = 100.0
    assert limiter.delay() == 0
    limiter.charge(requests=2, tokens=0)
    assert limiter.delay() == pytest.approx(1.0)
    assert RateLimiter(None, None).delay() == 0


def test_a_second_sigint_abandons_the_documents_in_flight(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "slow.txt").write_text("Inclusion Criteria:\n1. Diagnosis of slow sepsis\n", encoding="utf-8")
    with FaultServer({"slow": [hang(60.0)]}) as server:
        proc = start("run", str(inputs), "-o", str(tmp_path / "out"), "--backend", "openai", "--base-url", server.url,
                     "--model", "scripted", "--no-cache", "--timeout", "120")
        deadline = time.monotonic() + 60
        while not server.requests:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)
        assert proc.poll() is None  # the first Ctrl-C waits for the document in flight
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert "aborted; finished documents are saved, rerun the same command to resume" in stderr


def test_a_rerun_resumes_however_the_inputs_are_spelled(inputs: Path, tmp_path: Path, reference_dir: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(reference_dir, out)  # made with an absolute input path
    relative = Path(os.path.relpath(inputs, Path.cwd()))
    result = run([relative], out, RunConfig(backend="rules"))
    assert result.resumed == 150
    fresh = tmp_path / "fresh"
    run([relative], fresh, RunConfig(backend="rules"))
    assert outputs(out) == outputs(fresh)  # the records carry the path as this run spells it
    assert str(relative) in (out / "records.jsonl").read_text(encoding="utf-8")
