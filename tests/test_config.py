"""Settings helpers: thread choice from the cores that are free now, and what joins the cache key."""

from __future__ import annotations

import os
import threading
import time

import pytest

from kgrag import config
from kgrag.config import Settings
from kgrag.errors import KgragError


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


def test_continue_threshold_joins_the_cache_key_only_when_set() -> None:
    plain = Settings(n_threads=1).extraction_fingerprint()
    assert "continue_threshold" not in plain  # caches of greedy builds stay valid
    assert Settings(n_threads=1, continue_threshold=0.3).extraction_fingerprint() == plain | {"continue_threshold": 0.3}
    with pytest.raises(KgragError, match="continue_threshold"):
        Settings.load(None, continue_threshold=0)
