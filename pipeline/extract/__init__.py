"""Extraction backends behind one small interface.

A backend turns segmented criteria into entities. Backends are found by name in the
`trialstruct.backends` entry-point group: the built-ins are declared in pyproject.toml, and a
third-party package adds a provider by declaring its own entry point, touching nothing here.
`register_backend` does the same inside one process.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
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

    def nonzero(self) -> dict[str, int] | None:
        """The counters as a dict, or None when nothing was spent (an offline backend): journals
        and manifests then carry nothing for the document."""
        return dict(vars(self)) if any(vars(self).values()) else None


@dataclass
class Extraction:
    record: TrialRecord
    usage: Usage = field(default_factory=Usage)


class Backend(Protocol):
    name: str
    # Optional: True when extraction computes rather than waits, so the runner uses processes.
    cpu_bound: bool

    def provenance(self) -> Provenance:
        """Backend, model and prompt identity, written into every record."""
        ...

    def extract(self, record: TrialRecord) -> Extraction:
        """Return a copy of `record` with entities attached to its criteria."""
        ...



ENTRY_POINT_GROUP = "trialstruct.backends"
_REGISTERED: dict[str, Callable[[RunConfig], Backend]] = {}


def register_backend(name: str, factory: Callable[[RunConfig], Backend]) -> None:
    """Add a backend in this process (a notebook, a test); installed packages use the entry point."""
    _REGISTERED[name] = factory


def backend_names() -> list[str]:
    """Every backend that `--backend` accepts, besides `auto`."""
    return sorted({*_REGISTERED, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def resolve_backend_name(config: RunConfig) -> str:
    """`auto` means openai when an endpoint or a model is named, else the offline rules backend.

    An API key alone in the environment is not a request to spend it: many users export
    OPENAI_API_KEY for other tools.
    """
    if config.backend != "auto":
        return config.backend
    return "openai" if config.base_url or config.model else "rules"


def check_backend_name(config: RunConfig) -> str:
    """The resolved backend name, refused early (before any input is read) when nobody provides it."""
    name = resolve_backend_name(config)
    names = backend_names()
    if name not in names:
        if not names:
            raise BackendError("no backends are registered: install trialstruct (`pip install -e .`) "
                               "so its entry points exist")
        raise BackendError(f"unknown backend {name!r}; choose one of auto, {', '.join(names)}")
    return name


def load_backend(config: RunConfig) -> Backend:
    """The backend `config` names: registered in-process, else an installed `trialstruct.backends`
    entry point (built-ins are declared in pyproject.toml the same way a plugin declares its own)."""
    name = check_backend_name(config)
    if name in _REGISTERED:
        return _REGISTERED[name](config)
    [entry] = entry_points(group=ENTRY_POINT_GROUP, name=name)
    try:
        factory = entry.load()
    except ImportError as exc:
        raise BackendError(f"backend {name!r} is not available: {exc}") from exc
    backend: Backend = factory(config)
    return backend
