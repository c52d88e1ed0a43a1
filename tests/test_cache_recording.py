"""Recordings: export the entries a run used as sorted JSONL, import them into another cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cache import ModelCache, cache_key
from pipeline.cache.recording import export_recording, import_recording
from pipeline.cli import app
from pipeline.errors import CacheError


def entry(n: int) -> tuple[str, dict]:
    request = {"model": "m", "messages": [{"role": "user", "content": f"criterion {n} — ≥ 18"}]}
    return cache_key(request), {"request": request, "response": {"n": n}, "parsed": {"n": n}, "usage": {"n": n}}


@pytest.fixture
def cli() -> typer.Typer:
    return app


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    directory = tmp_path / "cache-a"
    with ModelCache(directory / "models.sqlite3") as cache:
        for n in range(10):
            cache.put(*entry(n))
    return directory


def test_export_writes_only_the_run_keys_sorted_and_deterministic(filled: Path, tmp_path: Path) -> None:
    used = [entry(n)[0] for n in (7, 2, 5)]
    with ModelCache(filled / "models.sqlite3") as cache:
        export_recording(cache, used, tmp_path / "one.jsonl")
        export_recording(cache, reversed(used), tmp_path / "two.jsonl")
    lines = (tmp_path / "one.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["key"] for line in lines] == sorted(used)
    assert "— ≥ 18" in lines[0]
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()


def test_export_refuses_when_a_used_key_is_gone(filled: Path, tmp_path: Path) -> None:
    with ModelCache(filled / "models.sqlite3") as cache, pytest.raises(CacheError, match="1 of 2 keys are not in"):
        export_recording(cache, [entry(1)[0], "f" * 64], tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()


def test_round_trip_through_the_cli_into_an_empty_cache(cli: typer.Typer, filled: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "cache-keys.txt").write_text("".join(f"{entry(n)[0]}\n" for n in (3, 4)), encoding="utf-8")
    runner = CliRunner()
    out = tmp_path / "evals" / "rec.jsonl"
    result = runner.invoke(cli, ["cache", "export", "--for", str(run), "-o", str(out), "--cache-dir", str(filled)])
    assert result.exit_code == 0, result.output
    assert "exported 2 entries" in result.output
    empty = tmp_path / "cache-b"
    result = runner.invoke(cli, ["cache", "import", str(out), "--cache-dir", str(empty)])
    assert result.exit_code == 0, result.output
    with ModelCache(empty / "models.sqlite3") as cache, ModelCache(filled / "models.sqlite3") as source:
        assert cache.count() == 2
        assert cache.lookup(entry(3)[0]) == source.lookup(entry(3)[0])
    result = runner.invoke(cli, ["cache", "stats", "--cache-dir", str(empty)])
    assert "2 entries" in result.output
    result = runner.invoke(cli, ["cache", "clear", "--yes", "--cache-dir", str(empty)])
    assert "deleted 2 entries" in result.output


def test_export_for_a_directory_that_is_not_a_run(cli: typer.Typer, filled: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["cache", "export", "--for", str(tmp_path), "-o", str(tmp_path / "r.jsonl"), "--cache-dir", str(filled)]
    )
    assert result.exit_code == 2
    assert "cache-keys.txt: missing" in result.output


def test_import_names_the_bad_line_and_stores_nothing(filled: Path, tmp_path: Path) -> None:
    key, item = entry(1)
    good = json.dumps({"key": key, "entry": item})
    edited = json.dumps({"key": key, "entry": {**item, "request": {"model": "other"}}})
    (tmp_path / "broken.jsonl").write_text(f"{good}\n{{not json\n", encoding="utf-8")
    (tmp_path / "edited.jsonl").write_text(f"{good}\n{edited}\n", encoding="utf-8")
    with ModelCache(tmp_path / "empty.sqlite3") as cache:
        with pytest.raises(CacheError, match=r"broken.jsonl:2: not a recording line"):
            import_recording(cache, tmp_path / "broken.jsonl")
        with pytest.raises(CacheError, match=r"edited.jsonl: .* hashes to"):
            import_recording(cache, tmp_path / "edited.jsonl")
        assert cache.count() == 0
