"""The library API, the error root and the layering: what the structure issue promised."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pipeline
from pipeline import RunConfig, TrialRecord, run_batch, structure
from pipeline.errors import BackendError, ConfigError
from pipeline.extract import Extraction, backend_names, load_backend, register_backend
from pipeline.extract.rules import Backend as RulesBackend
from pipeline.schema import Provenance
from tests.conftest import REPO, SEEDS


def test_a_notebook_structures_text_in_two_lines() -> None:
    record = structure("Inclusion Criteria:\n- Hemoglobin < 80 g/L\n\nExclusion Criteria:\n- Pregnant women")
    assert isinstance(record, TrialRecord)
    assert [(c.id, c.text) for c in record.criteria] == [("inc-1", "Hemoglobin < 80 g/L"), ("exc-1", "Pregnant women")]
    hemoglobin = next(e for e in record.entities() if e.text == "Hemoglobin")
    assert (hemoglobin.type, hemoglobin.value.comparator, hemoglobin.value.high) == ("Measurement", "<", 80.0)
    assert all(record.source_text[e.start:e.end] == e.text for e in record.entities())
    assert record.source.format == "inline" and record.provenance.backend == "rules"


def test_structure_of_a_file_is_the_line_run_writes(tmp_path: Path) -> None:
    page = sorted(SEEDS.glob("*.txt"))[1]
    result = run_batch([page], tmp_path / "out")
    assert result.finished == 1
    written = (tmp_path / "out" / "records.jsonl").read_text(encoding="utf-8")
    assert structure(page).model_dump_json() + "\n" == written
    assert structure(str(page)).model_dump_json() + "\n" == written  # a one-line string naming a file


def test_structure_refuses_a_file_of_many_documents_and_mixed_settings(tmp_path: Path) -> None:
    table = tmp_path / "two.jsonl"
    table.write_text('{"id": "a", "criteria": "- x"}\n{"id": "b", "criteria": "- y"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="holds 2 documents"):
        structure(table)
    with pytest.raises(ConfigError, match="either config= or keyword settings"):
        structure("- x", config=RunConfig(), backend="none")


class _OverRules:
    """A test backend: the rules backend's answers, with a misbehaviour added by each subclass."""

    name = "over-rules"

    def __init__(self, config: RunConfig) -> None:
        self.rules = RulesBackend(config)

    def provenance(self) -> Provenance:
        return Provenance(backend=self.name)


class _Failing(_OverRules):
    """A backend that fails on one document and corrupts a span on another."""

    name = "failing"

    def extract(self, record: TrialRecord) -> Extraction:
        if record.source.path.endswith("000_a830f8c2bc95e8a6.txt"):
            raise ZeroDivisionError("model exploded")
        extraction = self.rules.extract(record)
        if record.source.path.endswith("003_771e711b675f0f9f.txt"):  # a value of the wrong type
            criterion = next(c for c in extraction.record.criteria if c.entities)
            bogus = criterion.model_copy(update={"entities": [criterion.entities[0].model_copy(update={"start": "7"})]})
            criteria = [bogus if c.id == criterion.id else c for c in extraction.record.criteria]
            return Extraction(extraction.record.model_copy(update={"criteria": criteria}))
        if record.source.path.endswith("001_ca660e7d86dc1c0c.txt"):
            first = extraction.record.criteria[0]
            bad = first.model_copy(update={"end": first.end + 1})  # model_copy skips validation
            return Extraction(extraction.record.model_copy(update={"criteria": [bad, *extraction.record.criteria[1:]]}))
        return extraction


def test_every_error_names_the_stage_that_raised_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for page in SEEDS.glob("*.txt"):
        (inputs / page.name).write_bytes(page.read_bytes())
    (inputs / "empty.txt").write_bytes(b"")
    (inputs / "deep.txt").write_text("Inclusion Criteria:\n- recursion trigger\n", encoding="utf-8")
    import pipeline.run.runner as runner

    real_segment = runner.segment

    def segment(document):  # a RecursionError inside segmentation, as a pathological input would cause
        if document.doc_id == "deep":
            raise RecursionError("maximum recursion depth exceeded")
        return real_segment(document)

    monkeypatch.setattr(runner, "segment", segment)
    register_backend("failing", _Failing)
    result = run_batch([inputs], tmp_path / "out", backend="failing")
    stages = {f.doc_id or Path(f.path).name: (f.stage, f.error) for f in result.failures}
    assert stages["empty.txt"][0] == "ingest"
    assert stages["deep"] == ("segment", "RecursionError: maximum recursion depth exceeded")
    extract_failures = [error for stage, error in stages.values() if stage == "extract"]
    invalid = "ExtractError: backend 'failing' returned an invalid record: "
    assert "ZeroDivisionError: model exploded" in extract_failures
    assert f"{invalid}criterion inc-1: source_text[490:543] is 'Age 18-75 years old" in " ".join(extract_failures)
    wrong_type = next(e for e in extract_failures if "input_value='7'" in e)
    assert wrong_type.startswith(invalid) and "Expected `int`" in wrong_type
    assert result.finished == 2
    written = (tmp_path / "out" / "errors.jsonl").read_text(encoding="utf-8").splitlines()
    assert sorted(json.loads(line)["stage"] for line in written) == sorted(s for s, _ in stages.values())
    for line in (tmp_path / "out" / "records.jsonl").read_text(encoding="utf-8").splitlines():
        TrialRecord.model_validate_json(line)  # only records that passed the contract were written


def test_backends_are_registered_by_name() -> None:
    assert {"none", "rules", "openai", "local"} <= set(backend_names())
    register_backend("echo-test", _Failing)
    assert isinstance(load_backend(RunConfig(backend="echo-test")), _Failing)
    with pytest.raises(BackendError, match=r"unknown backend 'gpt-9'; choose one of auto, .*rules"):
        load_backend(RunConfig(backend="gpt-9"))


def test_import_pipeline_is_cheap_and_review_server_loads_no_runner() -> None:
    probe = ("import sys, pipeline, pipeline.review.server; "
             "print(sorted(m for m in sys.modules if m.startswith(('pipeline.run', 'pipeline.extract'))))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"
    assert pipeline.__version__ and "structure" in pipeline.__all__


# Import layers, lowest first: a module may import its own layer and those below, never above.
LAYERS = [
    {"pipeline", "pipeline.errors", "pipeline.files", "pipeline.redact"},
    {"pipeline.schema", "pipeline.config", "pipeline.pricing"},
    {"pipeline.ingest", "pipeline.chia"},
    {"pipeline.segment"},
    {"pipeline.cache"},
    {"pipeline.extract", "pipeline.ground"},  # grounding places what a model extracts, with the rules' parsers
    {"pipeline.run"},
    {"pipeline.evaluate", "pipeline.review", "pipeline.export", "pipeline.api", "pipeline.options", "pipeline.batch"},
    {"pipeline.cli", "pipeline.__main__", "pipeline.prompts"},
]


def _layer(module: str) -> int:
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        for index, layer in enumerate(LAYERS):
            if prefix in layer:
                return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] == "pipeline"}


def test_no_module_imports_a_stage_above_it() -> None:
    violations = []
    for path in sorted((REPO / "pipeline").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        if module == "pipeline":  # the package root re-exports the API lazily
            continue
        violations += [f"{module} imports {name}" for name in _imports(path) if _layer(name) > _layer(module)]
    assert violations == []


def test_cli_version_and_cache_stats_on_a_fresh_machine(tmp_path: Path) -> None:
    from pipeline.cli import app

    assert CliRunner().invoke(app, ["--version"]).output.strip() == f"trialstruct {pipeline.__version__}"
    result = CliRunner().invoke(app, ["cache", "stats", "--cache-dir", str(tmp_path / "none")])
    assert result.exit_code == 0 and "no cache yet (0 entries)" in result.output


def test_an_exported_api_key_alone_does_not_switch_auto_to_openai(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "OPENAI_API_KEY": "sk-test-not-used", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", str(SEEDS), "-o", str(tmp_path / "o")],
                          capture_output=True, text=True, env=env, check=False, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "backend: rules (auto: OPENAI_API_KEY is set but no --model" in done.stderr


class _Stuck(_OverRules):
    """A CPU-bound backend that never finishes one document (as a pathological input would)."""

    name = "stuck"
    cpu_bound = True

    def extract(self, record: TrialRecord) -> Extraction:
        while record.source.path.endswith("001_ca660e7d86dc1c0c.txt"):
            sum(range(1000))
        return self.rules.extract(record)


@pytest.mark.parametrize("workers", [2, 1])  # worker processes, or this one
def test_a_runaway_document_fails_alone_at_the_deadline(tmp_path: Path, workers: int) -> None:
    register_backend("stuck", _Stuck)
    result = run_batch([SEEDS], tmp_path / "out", backend="stuck", document_timeout=1.0, workers=workers)
    assert result.finished == 4
    [failure] = result.failures
    assert (failure.stage, failure.path) == ("run", str(SEEDS / "001_ca660e7d86dc1c0c.txt"))
    assert failure.error == "DocumentTimeout: took longer than 1 s (--document-timeout); the run went on"
