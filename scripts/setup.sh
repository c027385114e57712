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

if [ "${KGRAG_SKIP_EXAMPLE:-0}" != 1 ]; then
  .venv/bin/kgrag build examples/curie/docs --seeds-file examples/curie/seeds.txt \
    --config examples/curie/kgrag.yaml --out build/curie
  .venv/bin/kgrag lookup build/curie "Marie Curie"
fi
