"""Run configuration: one object built from flags, environment and `[tool.trialstruct]`.

Precedence, highest first: command-line flags, environment variables, the `[tool.trialstruct]`
table of ./pyproject.toml (or a file given with --config), built-in defaults.
The API key is held here only in memory; it is never serialised (see `public_dict`).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pipeline.redact import redact_url

ENVIRONMENT = {
    "OPENAI_API_KEY": "api_key",
    "OPENAI_BASE_URL": "base_url",
    "TRIALSTRUCT_MODEL": "model",
    "TRIALSTRUCT_BACKEND": "backend",
    "TRIALSTRUCT_CACHE_DIR": "cache_dir",
    "TRIALSTRUCT_TIMEOUT": "timeout",
    "TRIALSTRUCT_MODEL_PATH": "model_path",
}

SECRET_FIELDS = frozenset({"api_key"})


@dataclass(frozen=True)
class RunConfig:
    backend: str = "auto"
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    model_path: str | None = None
    timeout: float = 60.0
    doc_timeout: float = 900.0
    temperature: float = 0.0
    seed: int | None = 0
    max_tokens: int = 4096
    top_p: float | None = None
    max_reasks: int = 2
    max_transport_retries: int = 5
    doc_token_budget: int = 60000
    batch_token_budget: int = 3000
    cache_dir: str | None = None
    cache_mode: str = "readwrite"
    concurrency: int = 1
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    id_field: str | None = None
    text_field: str | None = None
    max_bytes: int = 20_000_000

    def public_dict(self) -> dict[str, Any]:
        """Everything but secrets: safe for manifests, cache keys and logs (URL credentials masked)."""
        public = {k: v for k, v in asdict(self).items() if k not in SECRET_FIELDS}
        return {**public, "base_url": redact_url(self.base_url)}


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f.type for f in fields(RunConfig)}[name]
    if raw is None or not isinstance(raw, str):
        return raw
    if "float" in kind:
        return float(raw)
    if "int" in kind:
        return int(raw)
    return raw


def load_file_settings(path: Path | None = None) -> dict[str, Any]:
    """The `[tool.trialstruct]` table of a pyproject.toml, or a plain trialstruct TOML file."""
    candidate = path or Path("pyproject.toml")
    if not candidate.is_file():
        return {}
    data = tomllib.loads(candidate.read_text(encoding="utf-8"))
    table = data.get("tool", {}).get("trialstruct", data if path else {})
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"{candidate}: unknown setting(s) {', '.join(unknown)}")
    return {k: _coerce(k, v) for k, v in table.items()}


def build_config(flags: dict[str, Any], config_file: Path | None = None) -> RunConfig:
    """Merge defaults < file < environment < flags (flags that are None are 'not given')."""
    settings: dict[str, Any] = load_file_settings(config_file)
    for variable, name in ENVIRONMENT.items():
        if os.environ.get(variable):
            settings[name] = _coerce(name, os.environ[variable])
    settings.update({k: v for k, v in flags.items() if v is not None})
    return replace(RunConfig(), **settings)
