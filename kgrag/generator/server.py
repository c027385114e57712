"""A bundled model as a local OpenAI-compatible server: llama.cpp's own ``llama-server``.

``scripts/setup.sh`` builds ``llama-server`` from the llama.cpp tree inside the pinned
llama-cpp-python source distribution (the same llama.cpp kgrag runs in-process) into the
environment's ``bin`` folder. :class:`LocalModelServer` starts it on 127.0.0.1 with parallel slots
(each with its own context, continuous batching, the fixed prompt prefix reused from slot memory)
and the model's own chat template, waits until it has loaded the model, and stops it cleanly.

The server knows the model by its ``--model`` name and by its identity (``name@sha256-prefix``, with
the adapter's for a fine-tuned one): a client sees the SHA-256 in ``/v1/models`` and keys its
extraction cache by it (:mod:`kgrag.generator.openai_compat`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import httpx
from pydantic import BaseModel, Field

from kgrag.errors import KgragError
from kgrag.generator.ref import ModelRef

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
BINARY_ENV = "KGRAG_LLAMA_SERVER"
LOAD_TIMEOUT_S = 300.0


def server_binary() -> Path:
    """``$KGRAG_LLAMA_SERVER``, else ``llama-server`` beside this Python (where setup.sh puts it), else
    on the PATH; a one-line error with the fix when there is none."""
    env = os.environ.get(BINARY_ENV)
    candidates = [Path(env)] if env else []
    candidates.append(Path(sys.executable).parent / "llama-server")
    found = shutil.which("llama-server")
    candidates += [Path(found)] if found else []
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise KgragError(
        "llama.cpp's llama-server is not installed: run scripts/setup.sh (it builds it from the pinned "
        f"llama-cpp-python sources), or set {BINARY_ENV} to a llama-server binary"
    )


class ServeOptions(BaseModel):
    """How to serve a model."""

    model: str = Field(description="bundled model or adapter name, .gguf path or adapter folder")
    port: int = Field(default=8090, ge=1, le=65535)
    parallel: int = Field(default=4, ge=1, description="slots: requests decoded together")
    ctx_per_slot: int = Field(default=4096, ge=512, description="context of each slot")
    threads: int = Field(default=2, ge=1)


class LocalModelServer:
    """``llama-server`` for one model on 127.0.0.1; its output goes to ``log`` (or is dropped)."""

    def __init__(self, options: ServeOptions, log: Path | None = None) -> None:
        self.options = options
        self.ref = ModelRef.parse(options.model)
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._tail: deque[str] = deque(maxlen=20)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.options.port}/v1"

    @property
    def names(self) -> list[str]:
        """What the server answers to: the model's name and its identity (with the SHA-256)."""
        return list(dict.fromkeys([self.options.model, self.ref.identity]))

    def command(self) -> list[str]:
        path, lora = self.ref.weights()
        o = self.options
        command = [str(server_binary()), "--model", str(path)]
        command += ["--lora", str(lora)] if lora else []
        command += [
            "--host", HOST, "--port", str(o.port), "--parallel", str(o.parallel),
            "--ctx-size", str(o.ctx_per_slot * o.parallel), "--threads", str(o.threads),
            "--threads-batch", str(o.threads), "--alias", ",".join(self.names), "--jinja", "--no-webui",
            "--n-gpu-layers", "0",
            # the in-process model runs without flash attention: with it, greedy outputs differed on near ties
            "--flash-attn", "off",
        ]  # fmt: skip
        return command

    def start(self, timeout_s: float = LOAD_TIMEOUT_S) -> None:
        """Start the server and wait until it answers with the model loaded."""
        self.ref.check()
        command = self.command()
        logger.debug("starting %s", " ".join(command))
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise KgragError(f"llama-server stopped while starting (exit {code}): {self.last_output()}")
            try:
                if httpx.get(f"http://{HOST}:{self.options.port}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise KgragError(f"llama-server did not load {self.options.model} within {timeout_s:.0f} s")

    def last_output(self) -> str:
        """The server's last lines of output, as one line."""
        return " | ".join(line for line in self._tail if line.strip())[-400:]

    def _drain(self) -> None:
        """Keep the server's output (the last lines for errors; all of it in the log file)."""
        assert self.process is not None and self.process.stdout is not None
        log = self.log.open("ab") if self.log is not None else None
        try:
            for raw in self.process.stdout:
                self._tail.append(raw.decode("utf-8", errors="replace").rstrip())
                if log is not None:
                    log.write(raw)
                    log.flush()
        finally:
            if log is not None:
                log.close()

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> LocalModelServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def ended(self) -> str | None:
        """Why the server is no longer running, when it is not (None while it runs)."""
        if self.process is None or self.process.poll() is not None:
            return f"llama-server ended by itself: {self.last_output()}"
        return None
