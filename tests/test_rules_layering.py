"""The rules backend sits in the extract stage: importing it (and its lexicon builder) loads no stage above it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

UPPER_STAGES = ("pipeline.ground", "pipeline.cache", "pipeline.run", "pipeline.evaluate", "pipeline.review")


@pytest.mark.parametrize("module", ["pipeline.extract.rules", "pipeline.extract.rules.build_lexicon"])
def test_rules_modules_import_no_upper_stage(module: str) -> None:
    probe = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = json.loads(answer.stdout)
    upper = [name for name in loaded if name.startswith(UPPER_STAGES)]
    assert upper == [], f"{module} imports {upper}"
