"""Command-line options that several ``kgrag`` commands share, declared once, and the defaults that
``--help`` shows for options that leave their value to :class:`~kgrag.config.Settings`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kgrag.config import Settings

# what --help says for a setting whose default is computed when the settings are made
_COMPUTED_DEFAULTS = {"n_threads": "cores not busy"}


def setting_default(name: str) -> str:
    """The default ``--help`` shows for an option that fills the setting ``name``.

    Such options default to None in Python, so that a YAML file and ``KGRAG_*`` variables can fill the
    setting when the option is not given; typer would show no default at all. This is the default of
    ``Settings.model_fields[name]`` itself, so the help cannot drift from it (typer prints such a string
    in parentheses: ``[default: (1)]``). A boolean names its flag, as typer does: ``no-open-relations``."""
    field = Settings.model_fields[name]
    if field.default_factory is not None:
        return _COMPUTED_DEFAULTS[name]
    value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        flag = name.replace("_", "-")
        return flag if value else f"no-{flag}"
    return str(value)


def share_option(setting: str, help: str, low: float = 0.0) -> typer.models.OptionInfo:
    """An option for a probability-like setting in [low, 1], its default shown from the settings."""
    return typer.Option(min=low, max=1.0, help=help, show_default=setting_default(setting))


ContinueThreshold = Annotated[
    Optional[float],
    share_option(
        "continue_threshold", "write another triple when P(continue the list) reaches this share (greedy: 0.5)", 0.01
    ),
]
MinTripleProb = Annotated[
    Optional[float],
    share_option(
        "min_triple_prob", "drop triples whose P(t|e,D) is lower (one model; a mixture uses ensemble_min_prob instead)"
    ),
]
MinConfidence = Annotated[
    Optional[float], share_option("min_confidence", "leave out of the graph facts whose confidence P(t|e) is lower")
]
ModelOption = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        help="bundled model or adapter, .gguf or adapter folder; several, comma-separated, mix their triples",
        show_default=setting_default("model"),
    ),
]
SchemaOption = Annotated[
    Optional[Path],
    typer.Option(
        metavar="NAME|FILE",
        help="graph schema: bundled name (kgrag schemas) or YAML/JSON file",
        show_default=setting_default("schema_path"),
    ),
]
ThreadsOption = Annotated[
    Optional[int],
    typer.Option(help="generator threads", show_default=setting_default("n_threads")),
]
LlmUrlOption = Annotated[
    Optional[str],
    typer.Option(
        metavar="URL",
        help="an OpenAI-compatible model server (llama.cpp server, Ollama, vLLM, an API), e.g. "
        "http://127.0.0.1:8090/v1; --model names a model it serves (key: KGRAG_LLM_API_KEY or OPENAI_API_KEY)",
        show_default=setting_default("llm_url"),
    ),
]
LlmConcurrencyOption = Annotated[
    Optional[int],
    typer.Option(
        min=1,
        help="requests in flight to --llm-url (unset: the server's slots, else 4); without --llm-url, passages "
        "the in-process model decodes at once (unset: the model's measured best)",
    ),
]
LlmTimeoutOption = Annotated[
    Optional[float],
    typer.Option(
        min=1, help="seconds one request to --llm-url may take", show_default=setting_default("llm_timeout_s")
    ),
]
