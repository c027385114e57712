"""Shared fixtures: the real MiniLM embedder, loaded once per test session."""

from __future__ import annotations

import pytest

from kgrag.index.embedder import MiniLMEmbedder


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()
