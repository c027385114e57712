"""Settings helpers: thread choice from the cores that are free now, what joins the cache key, and the
defaults that ``--help`` shows for options that leave their value to the settings."""

from __future__ import annotations

import inspect
import os
import re
import threading
import time

import pytest
from typer.testing import CliRunner

from kgrag import config
from kgrag.cli import app
from kgrag.cli.options import setting_default
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


def help_lines(command: str) -> dict[str, str]:
    """``kgrag COMMAND --help`` as {option: its row}, ANSI styling (forced on CI) stripped."""
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\W*(--[\w-]+)", line)
        if match:
            rows[match.group(1)] = line
    return rows


@pytest.mark.parametrize(
    ("command", "option", "setting", "shown"),
    [
        ("build", "--hops", "hops", "1"),
        ("build", "--max-entities", "max_entities", "20"),
        ("build", "--top-k", "top_k", "8"),
        ("build", "--threads", "n_threads", "cores not busy"),
        ("build", "--schema", "schema_path", "default"),
        ("build", "--open-relations", "open_relations", "no-open-relations"),
        ("build", "--continue-threshold", "continue_threshold", "unset"),
        ("build", "--min-triple-prob", "min_triple_prob", "0.5"),
        ("eval", "--max-triples", "max_triples", "6"),
        ("eval", "--threads", "n_threads", "cores not busy"),
    ],
)
def test_help_shows_the_settings_defaults(command: str, option: str, setting: str, shown: str) -> None:
    assert setting_default(setting) == shown
    default = Settings.model_fields[setting].default
    if isinstance(default, int | float) and not isinstance(default, bool):
        assert shown == str(default)  # the help is derived from the field, not written beside it
    assert f"[default: ({shown})]" in help_lines(command)[option]


def test_help_default_of_the_model_is_the_default_model() -> None:
    assert setting_default("model") == config.DEFAULT_MODEL
    assert f"[default: ({config.DEFAULT_MODEL})]" in help_lines("eval")["--model"]


def test_every_computed_default_has_words_for_the_help() -> None:
    computed = [name for name, field in Settings.model_fields.items() if field.default_factory is not None]
    assert computed == ["n_threads"]
    for name in computed:
        assert setting_default(name)


def test_options_still_default_to_none_so_yaml_and_env_fill_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from kgrag.cli.build import build

    parameters = inspect.signature(build).parameters
    for name in ["schema", "hops", "max_entities", "model", "top_k", "threads", "open_relations", "min_triple_prob"]:
        assert parameters[name].default is None, name
    monkeypatch.setenv("KGRAG_HOPS", "3")
    assert Settings.load(None, hops=None).hops == 3
