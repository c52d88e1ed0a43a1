"""A run's memory does not grow with its input: what the runner knows about each document (done,
ids seen, input order, where its record went) is kept on disk, in `RunIndex`.

`benchmarks/bench_memory.py` measures the peak RSS of whole runs at 1x, 10x and 100x HINT; this test
checks the same property cheaply, with Python's own allocation tracer on the runner's process.
"""

from __future__ import annotations

import gc
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from pipeline.config import RunConfig
from pipeline.run import run, runner
from pipeline.run.outputs import write_run
from pipeline.run.runner import usable_cores


def _inputs(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for n in range(count):
            row = {"nct_id": f"NCT{n:08d}", "criteria": f"Inclusion Criteria:\n- age {18 + n % 50} years or older"}
            out.write(json.dumps(row) + "\n")
    return path


def _held_bytes(tmp_path: Path, count: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Memory held once every document is processed, just before the outputs are assembled (what a
    run keeps per document is all alive then), with garbage collected so only live objects count."""
    data = _inputs(tmp_path / f"in-{count}.jsonl", count)
    held: list[int] = []

    def measured(*args: object, **kwargs: object) -> None:
        gc.collect()
        held.append(tracemalloc.get_traced_memory()[0])
        write_run(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "write_run", measured)
    tracemalloc.start()
    try:
        result = run([data], tmp_path / f"out-{count}", RunConfig(backend="none", workers=1))
    finally:
        tracemalloc.stop()
    assert result.counts.records == count
    return held[0]


@pytest.mark.slow  # the allocation tracer slows the run about tenfold
def test_the_runner_keeps_nothing_per_document_in_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    small, large = _held_bytes(tmp_path, 300, monkeypatch), _held_bytes(tmp_path, 2_300, monkeypatch)
    per_document = (large - small) / 2_000
    # Before RunIndex, each document kept ~700 bytes alive (its Planned, its journal entry, its id).
    assert per_document < 60, f"{per_document:.0f} bytes per document stay in memory"


def test_a_resumed_run_reads_what_is_done_from_disk(tmp_path: Path) -> None:
    data = _inputs(tmp_path / "in.jsonl", 300)
    first = run([data], tmp_path / "out", RunConfig(backend="none", workers=1))
    records = (tmp_path / "out" / "records.jsonl").read_bytes()
    second = run([data], tmp_path / "out", RunConfig(backend="none", workers=1))
    assert (first.finished, second.resumed, second.finished) == (300, 300, 300)
    assert (tmp_path / "out" / "records.jsonl").read_bytes() == records
    assert not (tmp_path / "out" / ".parts" / "run.sqlite").exists()


def test_a_duplicate_id_fails_and_names_where_it_came_first(tmp_path: Path) -> None:
    first, second = _inputs(tmp_path / "a.jsonl", 3), _inputs(tmp_path / "b.jsonl", 2)
    result = run([first, second], tmp_path / "out", RunConfig(backend="none", workers=1))
    assert result.counts.records == 3
    assert [(f.path, f.row, f.error) for f in result.failures] == [
        (str(second), 1, f"duplicate doc_id 'NCT00000000' (first in {first})"),
        (str(second), 2, f"duplicate doc_id 'NCT00000001' (first in {first})"),
    ]


def test_workers_default_to_the_cores_a_container_may_use(tmp_path: Path) -> None:
    pinned = len(os.sched_getaffinity(0))
    cpu_max = tmp_path / "cpu.max"
    assert usable_cores(cpu_max) == pinned  # no cgroup file: the cores this process is pinned to
    cpu_max.write_text("max 100000\n")
    assert usable_cores(cpu_max) == pinned
    cpu_max.write_text("50000 100000\n")  # half a core
    assert usable_cores(cpu_max) == 1
    cpu_max.write_text(f"{150000 * pinned} 100000\n")  # more quota than cores
    assert usable_cores(cpu_max) == pinned
