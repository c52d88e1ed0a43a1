#!/usr/bin/env bash
# Build llama.cpp's C++ `llama-server` (parallel slots, continuous batching) from PyPI alone: the
# llama-cpp-python sdist vendors llama.cpp. Only the llama-server target, CPU, no curl/OpenSSL and no
# web UI download, llama.cpp's libraries linked in. The binary goes OUTSIDE the repository:
#   ${TRIALSTRUCT_LLAMA_SERVER_DIR:-~/.cache/trialstruct-llama-server}/bin/llama-server
# where tests/llama_server.py and benchmarks/bench_llm_concurrency.py look for it (after PATH and
# $TRIALSTRUCT_LLAMA_SERVER). Prints the binary's path as its last line. Needs a C++17 compiler;
# cmake and ninja come from pip when absent.
# Measured: 32.5 minutes wall, 11 CPU-minutes (about 6 minutes on 2 idle cores), on a 2-core VM at load 6-10.
set -euo pipefail

version="0.3.36"  # the llama-cpp-python release the `local` extra builds (.ci/run)
home="${TRIALSTRUCT_LLAMA_SERVER_DIR:-$HOME/.cache/trialstruct-llama-server}"
binary="$home/bin/llama-server"
if [ -x "$binary" ]; then
  echo "$binary"  # already built
  exit 0
fi

python="${PYTHON:-python3}"
src="$home/src"
mkdir -p "$src" "$home/bin"
if [ ! -d "$src/llama_cpp_python-$version" ]; then
  "$python" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$src"
  tar -xzf "$src/llama_cpp_python-$version.tar.gz" -C "$src"
fi
llama="$src/llama_cpp_python-$version/vendor/llama.cpp"
if ! command -v cmake >/dev/null 2>&1 || ! command -v ninja >/dev/null 2>&1; then
  "$python" -m pip install -q cmake ninja
  PATH="$("$python" -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH"
fi

cmake -S "$llama" -B "$llama/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$llama/build" --target llama-server -j "$(nproc)" >&2
cp "$llama/build/bin/llama-server" "$binary.tmp" && mv "$binary.tmp" "$binary"
echo "$binary"
