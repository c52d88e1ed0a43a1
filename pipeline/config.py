"""Run configuration, declared once.

Every setting is one field of `RunConfig`, annotated with a `Setting` that says what it is for:
its help text, its environment variable, whether it is a secret, and what it affects. From that
one declaration come the environment map, the `run`/`eval` command-line options (`pipeline.cli`),
what a manifest may show (`public_dict`), the resume identity of a run (`output_settings`) and the
sampling part of a cache key (`sampling_settings`).

Precedence, highest first: command-line flags, environment variables, a `--config` TOML file or the
`[tool.trialstruct]` table of ./pyproject.toml, built-in defaults. Values from every source are
validated the same way (pydantic), so a bad value is one line naming the setting and the source.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_type_hints

from pydantic import ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass as validated_dataclass

from pipeline.errors import ConfigError
from pipeline.redact import redact_url

Affects = Literal["output", "sampling", "execution", "secret"]


@dataclass(frozen=True)
class Setting:
    """What a field of `RunConfig` is for.

    affects: `output` decides what a run writes (part of the resume identity); `sampling` is a
    model sampling parameter (part of the resume identity and of every cache key); `execution`
    changes only how fast or where a run goes; `secret` is never written anywhere.
    """

    help: str
    env: str | None = None
    affects: Affects = "output"
    flag: bool = True  # offered as a command-line option


class CacheMode(StrEnum):
    READWRITE = "readwrite"
    OFFLINE = "offline"
    REFRESH = "refresh"
    OFF = "off"


@validated_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class RunConfig:
    backend: Annotated[str, Setting("Extraction backend: auto, rules, openai, local, none, or a plugin's name.",
                                    env="TRIALSTRUCT_BACKEND")] = "auto"
    model: Annotated[str | None, Setting("Model id for the openai backend.", env="TRIALSTRUCT_MODEL")] = None
    base_url: Annotated[str | None, Setting("OpenAI-compatible endpoint URL.", env="OPENAI_BASE_URL")] = None
    api_key: Annotated[str | None, Setting("API key (better: the OPENAI_API_KEY environment variable).",
                                           env="OPENAI_API_KEY", affects="secret")] = dataclasses.field(
        default=None, repr=False)
    model_path: Annotated[str | None, Setting("GGUF model file for the local backend.",
                                              env="TRIALSTRUCT_MODEL_PATH")] = None
    timeout: Annotated[float, Setting("Seconds a whole model request may take (a trickling answer is cut).",
                                      env="TRIALSTRUCT_TIMEOUT", affects="execution")] = 60.0
    temperature: Annotated[float, Setting("Sampling temperature.", affects="sampling")] = 0.0
    seed: Annotated[int | None, Setting("Sampling seed.", affects="sampling")] = 0
    max_tokens: Annotated[int, Setting("Longest answer per model call, in tokens.", affects="sampling")] = 4096
    top_p: Annotated[float | None, Setting("Nucleus sampling cut-off.", affects="sampling")] = None
    prompt: Annotated[str, Setting("Prompt: a folder name under prompts/, or the path of a prompt folder.",
                                   env="TRIALSTRUCT_PROMPT")] = "extract-v2"
    max_reasks: Annotated[int, Setting("Re-asks of a model whose answer cannot be grounded.")] = 2
    max_transport_retries: Annotated[int, Setting("Retries of a failed request (429, 5xx, timeouts).",
                                                  affects="execution")] = 5
    doc_token_budget: Annotated[int, Setting("Most tokens one document may spend.")] = 60000
    batch_token_budget: Annotated[int, Setting("Prompt tokens of criteria sent in one call.")] = 3000
    cache_dir: Annotated[str | None, Setting("Model-call cache directory.", env="TRIALSTRUCT_CACHE_DIR",
                                             affects="execution")] = None
    cache_mode: Annotated[CacheMode, Setting("readwrite, offline, refresh or off.", affects="execution",
                                             flag=False)] = CacheMode.READWRITE
    concurrency: Annotated[int, Setting("Documents in flight at once per process (model backends wait on I/O).",
                                        affects="execution")] = 1
    document_timeout: Annotated[float, Setting("Seconds one document may take, retries and re-asks included, "
                                               "before it fails and the run goes on.", affects="execution")] = 900.0
    workers: Annotated[int | None, Setting("Worker processes; default: one per usable core (affinity, container "
                                           "CPU quota) for CPU-bound backends (rules, none), one for model "
                                           "backends.", affects="execution")] = None
    requests_per_minute: Annotated[float | None, Setting("Client-side limit on model requests.",
                                                         affects="execution")] = None
    tokens_per_minute: Annotated[float | None, Setting("Client-side limit on model tokens.",
                                                       affects="execution")] = None
    rules_tagger: Annotated[bool, Setting("Rules backend: find names the lexicon never saw with the sequence tagger "
                                          "(about 5x slower extraction; off: lexicon and context rules only).",
                                          env="TRIALSTRUCT_RULES_TAGGER")] = True
    id_field: Annotated[str | None, Setting("Table column holding the document id.")] = None
    text_field: Annotated[str | None, Setting("Table column holding the criteria text.")] = None
    max_bytes: Annotated[int, Setting("Largest text page, table row or ClinicalTrials.gov study, in bytes (tables, "
                                      "CT.gov JSON and zip archives are streamed: their size is not limited).")
                         ] = 20_000_000

    def public_dict(self) -> dict[str, Any]:
        """Everything but secrets (credentials inside the endpoint URL masked): safe for manifests and logs."""
        public = {name: _plain(getattr(self, name)) for name, setting in SETTINGS.items()
                  if setting.affects != "secret"}
        return {**public, "base_url": redact_url(self.base_url)}

    def output_settings(self) -> dict[str, Any]:
        """The settings that decide what a run writes: a rerun that changes only others resumes."""
        return {name: _plain(getattr(self, name)) for name, setting in SETTINGS.items()
                if setting.affects in ("output", "sampling")}

    def sampling_settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name, setting in SETTINGS.items() if setting.affects == "sampling"}

    def with_changes(self, **changes: Any) -> RunConfig:
        """A copy with `changes` applied and validated like any other source."""
        return dataclasses.replace(self, **changes)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, StrEnum) else value


_HINTS = get_type_hints(RunConfig, include_extras=True)
SETTINGS: dict[str, Setting] = {
    field.name: next(m for m in _HINTS[field.name].__metadata__ if isinstance(m, Setting))
    for field in dataclasses.fields(RunConfig)
}
ENVIRONMENT: dict[str, str] = {s.env: name for name, s in SETTINGS.items() if s.env}


def field_type(name: str) -> Any:
    """The value type of a setting, without its `Setting` (for options and validation)."""
    return get_args(_HINTS[name])[0]


def load_file_settings(path: Path | None = None) -> dict[str, Any]:
    """The `[tool.trialstruct]` table of ./pyproject.toml, or a whole trialstruct TOML file."""
    candidate = path or Path("pyproject.toml")
    if not candidate.is_file():
        if path is not None:
            raise ConfigError(f"{path}: no such settings file")
        return {}
    try:
        data = tomllib.loads(candidate.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{candidate}: not valid TOML ({exc})") from None
    table = data.get("tool", {}).get("trialstruct", data if path else {})
    unknown = sorted(set(table) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"{candidate}: unknown setting(s) {', '.join(unknown)}")
    return {name: (value, str(candidate)) for name, value in table.items()}


def build_config(flags: dict[str, Any], config_file: Path | None = None) -> RunConfig:
    """Merge defaults < file < environment < flags (a flag that is None is 'not given')."""
    sourced: dict[str, tuple[Any, str]] = load_file_settings(config_file)
    for variable, name in ENVIRONMENT.items():
        if os.environ.get(variable):
            sourced[name] = (os.environ[variable], f"environment variable {variable}")
    unknown = sorted(set(flags) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}")
    sourced.update({name: (value, f"--{name.replace('_', '-')}") for name, value in flags.items() if value is not None})
    values = {name: _validated(name, value, source) for name, (value, source) in sourced.items()}
    return RunConfig(**values)


def _validated(name: str, value: Any, source: str) -> Any:
    try:
        return TypeAdapter(field_type(name)).validate_python(value)
    except ValidationError as exc:
        shown = "***" if SETTINGS[name].affects == "secret" else repr(value)
        problem = exc.errors()[0]["msg"]
        raise ConfigError(f"{source}: bad value {shown} for {name}: {problem}") from None
