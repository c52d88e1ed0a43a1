"""Shared test fixtures: repository paths and the optional shared data set."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SEEDS = REPO / "seeds"
SHARED_DATA = REPO.parent / "shared" / "data"


def shared_path(relative: str) -> Path:
    """A path under ../shared/data, skipping the test cleanly when the data set is absent."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data not available: {path} (expected beside the repository)")
    return path


@pytest.fixture
def seeds_dir() -> Path:
    return SEEDS
