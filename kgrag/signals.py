"""Signals: a build that ends on SIGTERM as on Ctrl-C, and local servers that run until either."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from kgrag.errors import KgragError


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, a service manager stopping the work) ends the work like Ctrl-C: what is
    finished is saved. Only the main thread can take signals; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_until_stopped(
    start: Callable[[], None],
    stop: Callable[[], None],
    on_ready: Callable[[], None],
    ended: Callable[[], str | None] = lambda: None,
) -> None:
    """``start`` a server, call ``on_ready``, and block until Ctrl-C or SIGTERM, or until ``ended``
    says why the server stopped by itself (a one-line error then); ``stop`` it in every case."""
    stopping = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        start()
        if not stopping.is_set():
            on_ready()
        while not stopping.wait(0.5):
            reason = ended()
            if reason is not None:
                raise KgragError(reason)
    finally:
        stop()
        for sig, old in previous.items():
            signal.signal(sig, old)
