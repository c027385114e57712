"""The graph store interface. NetworkX (embedded, a file in the build directory) is the default."""

from __future__ import annotations

from typing import Protocol

from kgrag.records import ResolvedGraph


class GraphStore(Protocol):
    def write(self, graph: ResolvedGraph) -> None:
        """Make the store hold ``graph``; writing the same graph twice changes nothing."""
        ...

    def close(self) -> None: ...
