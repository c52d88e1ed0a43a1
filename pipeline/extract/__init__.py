"""Extraction backends behind one small interface.

A backend turns segmented criteria into entities. Each backend lives in its own module
`pipeline/extract/<name>.py` exposing a class named `Backend`; `load_backend` imports it by
name, so adding a provider touches one file.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.config import RunConfig
from pipeline.errors import BackendError
from pipeline.schema import Provenance, TrialRecord


@dataclass
class Usage:
    """What extraction cost for one document (summed into manifest.json)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    reasks: int = 0
    dropped_entities: int = 0
    cache_hits: int = 0

    def add(self, other: Usage) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class Extraction:
    record: TrialRecord
    usage: Usage = field(default_factory=Usage)


class Backend(Protocol):
    name: str

    def provenance(self) -> Provenance:
        """Backend, model and prompt identity, written into every record."""
        ...

    def extract(self, record: TrialRecord) -> Extraction:
        """Return a copy of `record` with entities attached to its criteria."""
        ...



BACKEND_NAMES = ("auto", "none", "rules", "openai", "local")


def resolve_backend_name(config: RunConfig) -> str:
    """`auto` means openai when an endpoint is configured, else the offline rules backend."""
    if config.backend != "auto":
        return config.backend
    return "openai" if config.base_url or config.api_key else "rules"


def load_backend(config: RunConfig) -> Backend:
    name = resolve_backend_name(config)
    if name not in BACKEND_NAMES:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}")
    module_name = "openai_compat" if name == "openai" else name
    try:
        module = importlib.import_module(f"pipeline.extract.{module_name}")
    except ModuleNotFoundError as exc:
        raise BackendError(f"backend {name!r} is not available: {exc}") from exc
    return module.Backend(config)
