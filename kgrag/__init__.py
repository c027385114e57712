"""kgrag: knowledge graphs from your own documents, with retrieval-augmented generation on a CPU."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["GraphSchema", "KgragError", "KnowledgeGraph", "Settings", "__version__"]

if TYPE_CHECKING:
    from kgrag.api import KnowledgeGraph
    from kgrag.config import Settings
    from kgrag.errors import KgragError
    from kgrag.schema import GraphSchema


def __getattr__(name: str) -> Any:
    """Import the public names lazily, so ``import kgrag`` stays fast."""
    if name == "KnowledgeGraph":
        from kgrag.api import KnowledgeGraph

        return KnowledgeGraph
    if name == "Settings":
        from kgrag.config import Settings

        return Settings
    if name == "GraphSchema":
        from kgrag.schema import GraphSchema

        return GraphSchema
    if name == "KgragError":
        from kgrag.errors import KgragError

        return KgragError
    raise AttributeError(f"module 'kgrag' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (imported or not yet) and the module's own dunders, so ``dir(kgrag)`` and
    tab completion offer the API rather than nothing of it."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})
