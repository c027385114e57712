"""Settings helpers: thread choice from the cores that are free now."""

from __future__ import annotations

import os
import threading
import time

from kgrag import config


def test_busy_cores_sees_a_spinning_thread_and_default_threads_leaves_it_its_core() -> None:
    stop = time.monotonic() + 1.0

    def spin() -> None:
        while time.monotonic() < stop:
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        busy = config.busy_cores(0.3)
    finally:
        worker.join()
    assert 0.5 <= busy <= (os.cpu_count() or 1) + 0.01
    assert 1 <= config.default_threads() <= len(os.sched_getaffinity(0))


def test_busy_cores_falls_back_to_the_load_average(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(config, "_cpu_times", lambda: None)
    monkeypatch.setattr(config.os, "getloadavg", lambda: (1.5, 0.0, 0.0))
    assert config.busy_cores() == 1.5
