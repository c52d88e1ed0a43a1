"""Cache keys: SHA-256 of the canonical JSON of everything that can change a model's answer.

Two calls share a key exactly when they would send the same request to the same model with the
same sampling settings under the same prompt and code version. Transport details (API key,
timeout, retry counts, concurrency) never enter a key, so rotating a key or raising a timeout
keeps every cached answer.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pipeline.config import RunConfig

SECRET_WORDS = ("api_key", "apikey", "authorization", "password", "secret", "bearer")


def canonical_json(value: Any) -> str:
    """One text per value: sorted keys, no whitespace, UTF-8 kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _secret_paths(value: Any, path: str = "") -> list[str]:
    if isinstance(value, Mapping):
        found = []
        for name, item in value.items():
            where = f"{path}.{name}" if path else str(name)
            normalised = str(name).lower().replace("-", "_")
            if any(word in normalised for word in SECRET_WORDS):
                found.append(where)
            found.extend(_secret_paths(item, where))
        return found
    if isinstance(value, list | tuple):
        return [p for i, item in enumerate(value) for p in _secret_paths(item, f"{path}[{i}]")]
    return []


def cache_key(parts: Mapping[str, Any]) -> str:
    """SHA-256 hex of `canonical_json(parts)`; refuses parts named like a credential."""
    secrets = _secret_paths(parts)
    if secrets:
        raise ValueError(f"cache key parts must not contain secrets: {', '.join(secrets)}")
    return hashlib.sha256(canonical_json(parts).encode("utf-8")).hexdigest()


def endpoint_identity(config: RunConfig) -> str | None:
    """Where the model runs, without credentials: the base URL minus userinfo and query, or the model file."""
    if config.base_url:
        url = urlsplit(config.base_url.strip())
        host = (url.hostname or "").lower()
        netloc = f"{host}:{url.port}" if url.port else host
        return urlunsplit((url.scheme.lower(), netloc, url.path.rstrip("/"), "", ""))
    if config.model_path:
        return f"file:{os.path.basename(config.model_path)}"
    return None


def call_parts(
    config: RunConfig,
    *,
    backend: str,
    messages: list[dict[str, Any]],
    response_schema: Mapping[str, Any] | None,
    mode: str | None,
    prompt_version: str | None,
    code_version: str,
    **sampling: Any,
) -> dict[str, Any]:
    """The key parts of one model call; extra keyword arguments are further sampling parameters."""
    params = config.sampling_settings()
    params.update(sampling)
    return {
        "backend": backend,
        "model": config.model,
        "endpoint": endpoint_identity(config),
        "messages": messages,
        "response_schema": response_schema,
        "mode": mode,
        "sampling": params,
        "prompt_version": prompt_version,
        "code_version": code_version,
    }
