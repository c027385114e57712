#!/usr/bin/env bash
# Fresh machine → working kgrag: a virtualenv at .venv with kgrag and its bundled model, then a
# build of the example corpus (build/curie). Safe to re-run: every step skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# the default generator, the fast one the end-to-end tests use, and the tiny one fine-tuning tests train
MODELS=${KGRAG_MODELS:-qwen2.5-1.5b qwen2.5-0.5b smollm2-135m}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}  # llama-cpp-python compiles here

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first, pinned: the CPU build; an unpinned torch would pull a multi-GB CUDA build
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/kgrag models install $MODELS

# llama.cpp's own server (kgrag serve-model), built from the llama.cpp tree inside the pinned
# llama-cpp-python sources: the same llama.cpp kgrag runs in-process (~5 min on 2 cores, once)
if [ ! -x .venv/bin/llama-server ]; then
  version=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('llama-cpp-python'))")
  src=$(mktemp -d)
  trap 'rm -rf "$src"' EXIT
  .venv/bin/python -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$src"
  tar -xzf "$src"/llama_cpp_python-"$version".tar.gz -C "$src" "llama_cpp_python-$version/vendor/llama.cpp"
  cmake -S "$src/llama_cpp_python-$version/vendor/llama.cpp" -B "$src/build" -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON > "$src/cmake.log" \
    || { tail -n 30 "$src/cmake.log"; exit 1; }
  cmake --build "$src/build" --target llama-server -j "$CMAKE_BUILD_PARALLEL_LEVEL" > "$src/build.log" \
    || { tail -n 30 "$src/build.log"; exit 1; }
  install -m 755 "$src/build/bin/llama-server" .venv/bin/llama-server
fi

if [ "${KGRAG_SKIP_EXAMPLE:-0}" != 1 ]; then
  .venv/bin/kgrag build examples/curie/docs --seeds-file examples/curie/seeds.txt \
    --config examples/curie/kgrag.yaml --out build/curie
  .venv/bin/kgrag lookup build/curie "Marie Curie"
fi
