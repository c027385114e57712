"""Shared fixtures: the real MiniLM embedder, loaded once per test session, and the root logger
restored after each test (the CLI configures it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from kgrag.index.embedder import MiniLMEmbedder


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI configures the root logger; leave it as it was for the other tests."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
