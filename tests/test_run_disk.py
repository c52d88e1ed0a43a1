"""A full or read-only disk: one clear line, exit 1, and what was written before stays intact.

Each test mounts a small tmpfs (root only, as in CI); elsewhere they skip with the reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SEEDS


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def trialstruct(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, check=False,
                          timeout=300)


def copies(folder: Path, count: int) -> Path:
    folder.mkdir()
    for n in range(count):
        for seed in sorted(SEEDS.glob("*.txt")):
            shutil.copy(seed, folder / f"{seed.stem}-{n:03d}.txt")
    return folder


def test_a_full_disk_is_one_line_exit_1_and_earlier_output_stays(small_disk: Path, tmp_path: Path) -> None:
    out = small_disk / "out"
    first = trialstruct("run", str(copies(tmp_path / "few", 1)), "-o", str(out), "--backend", "rules")
    assert first.returncode == 0, first.stderr
    before = {name: (out / name).read_bytes() for name in ("records.jsonl", "manifest.json", "errors.jsonl")}
    many = trialstruct("run", str(copies(tmp_path / "many", 40)), "-o", str(out), "--backend", "rules")
    assert many.returncode == 1
    errors = [line for line in many.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No space left on device" in errors[0], many.stderr
    assert "Traceback" not in many.stderr
    assert {name: (out / name).read_bytes() for name in before} == before
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_read_only_output_directory_is_one_line_exit_1(small_disk: Path, tmp_path: Path) -> None:
    out = small_disk / "out"
    assert trialstruct("run", str(SEEDS), "-o", str(out), "--backend", "rules").returncode == 0
    before = (out / "records.jsonl").read_bytes()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    again = trialstruct("run", str(SEEDS), "-o", str(out), "--backend", "rules", "--max-reasks", "1")
    assert again.returncode == 1
    assert again.stderr.strip().splitlines()[-1].endswith("Read-only file system"), again.stderr
    assert "Traceback" not in again.stderr
    assert (out / "records.jsonl").read_bytes() == before


def test_temporary_files_of_a_killed_writer_are_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stray = out / ".records.jsonl.k1ll3d.tmp"
    stray.write_text("half a record", encoding="utf-8")
    unrelated = out / ".notes.tmp"
    unrelated.write_text("mine", encoding="utf-8")
    assert trialstruct("run", str(SEEDS), "-o", str(out), "--backend", "none").returncode == 0
    assert not stray.exists() and unrelated.exists()


def test_the_run_index_on_a_full_disk_is_one_output_error(small_disk: Path) -> None:
    from pipeline.errors import OutputError
    from pipeline.run.index import RunIndex
    from pipeline.run.plan import Planned

    index = RunIndex(small_disk / "run.sqlite")
    try:
        with pytest.raises(OutputError) as caught:
            for n in range(100_000):  # 400 KB fills within a few thousand rows
                index.add_input(Planned(n, key=f"{n:064d}", doc_id=f"NCT{n:08d}", path="x" * 200))
        assert str(caught.value) == f"{small_disk / 'run.sqlite'}: cannot write the run index: No space left on device"
    finally:
        index.close()


def test_a_line_the_full_disk_cut_short_fails_once_and_the_journal_still_closes(small_disk: Path) -> None:
    """The append reports the full disk; closing must not raise again on the bytes still buffered (it did,
    and the run printed a traceback instead of its one line)."""
    from pipeline.errors import OutputError
    from pipeline.run.journal import Journal

    out = small_disk / "out"
    journal = Journal(out, "0" * 16, out / "records.jsonl")
    filler = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):  # unbuffered: fill the disk to its last byte
        while os.write(filler, b"x" * 512):
            pass
    os.close(filler)
    with pytest.raises(OutputError, match="No space left on device"):
        journal.append("doc", '{"id": "doc"}', [], None, (0, 0, 0))
    journal.close()
