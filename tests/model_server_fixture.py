"""Real model servers on loopback for the tests: ``kgrag serve-model`` in its own process, and a small
fault-injecting HTTP proxy in front of it (429, 500, timeouts, replies without log-probabilities,
replies that ignore the schema)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from kgrag.neo4j.server import free_port

START_TIMEOUT_S = 180


class ModelServer:
    """``kgrag serve-model`` on a free loopback port; stops with Ctrl-C."""

    def __init__(self, model: str = "smollm2-135m", parallel: int = 2, port: int | None = None) -> None:
        self.model = model
        self.parallel = parallel
        self.port = port or free_port()
        self.proc: subprocess.Popen[str] | None = None
        self.output: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ModelServer:
        command = [sys.executable, "-c", "from kgrag.cli import main; main()", "serve-model", "--model", self.model]
        command += ["--port", str(self.port), "--parallel", str(self.parallel), "--threads", "1"]
        self.output = []
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            env=os.environ | {"COLUMNS": "300"},
        )
        ready = threading.Event()
        threading.Thread(target=self._read, args=(self.proc, ready), daemon=True).start()
        if not ready.wait(START_TIMEOUT_S) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("kgrag serve-model did not start:\n" + "\n".join(self.output[-30:]))
        return self

    def _read(self, proc: subprocess.Popen[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.output.append(line.rstrip("\n"))
            if "Ctrl-C stops it" in line:
                ready.set()
        ready.set()

    def kill(self) -> None:
        """kill -9 the server and the llama-server under it: a server that goes away."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None


Fault = Callable[[dict[str, Any]], tuple[int, dict[str, str], bytes] | None]


class FaultProxy:
    """Forwards to ``upstream``; each POST to ``/chat/completions`` first takes the next entry of
    ``faults`` (while any are left): a function of the upstream's reply (None: forward it as it is,
    else the status, headers and body to send instead), or "429", "500", "drop" (close the connection
    without an answer) instead of forwarding. Each GET first sleeps the next of ``get_delays`` seconds
    (a server too slow for the client's timeout). Counts what it saw."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: list[str | Fault] = []
        self.get_delays: list[float] = []
        self.requests = 0
        self.authorization: set[str] = set()  # the Authorization headers seen
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with proxy.lock:
                    delay = proxy.get_delays.pop(0) if proxy.get_delays else 0.0
                time.sleep(delay)
                reply = httpx.get(proxy._url(self.path))
                self._send(reply.status_code, {"Content-Type": "application/json"}, reply.content)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy.lock:
                    proxy.requests += 1
                    proxy.authorization.add(self.headers.get("Authorization", ""))
                    fault = proxy.faults.pop(0) if proxy.faults and self.path.endswith("/chat/completions") else None
                if fault == "429":
                    return self._send(429, {"Retry-After": "0"}, b'{"error": {"message": "slow down"}}')
                if fault == "500":
                    return self._send(500, {}, b'{"error": {"message": "injected failure"}}')
                if fault == "drop":
                    self.close_connection = True
                    return None
                headers = {"Content-Type": "application/json"}
                reply = httpx.post(proxy._url(self.path), content=body, headers=headers, timeout=300)
                if callable(fault):
                    changed = fault(reply.json())
                    if changed is not None:
                        return self._send(*changed)
                self._send(reply.status_code, {"Content-Type": "application/json"}, reply.content)

            def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (its timeout): what the test wants

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _url(self, path: str) -> str:
        root = self.upstream.removesuffix("/v1")
        return root + path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def without_logprobs(reply: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """A server that sends no token log-probabilities."""
    for choice in reply.get("choices", []):
        choice.pop("logprobs", None)
    return 200, {"Content-Type": "application/json"}, json.dumps(reply).encode()


def ignoring_the_schema(reply: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
    """A server that ignored response_format and wrote prose."""
    reply["choices"][0]["message"]["content"] = "Sure! Here are the triples you asked for."
    reply["choices"][0].pop("logprobs", None)
    return 200, {"Content-Type": "application/json"}, json.dumps(reply).encode()
