"""The root package: its public names, offered by ``dir(kgrag)`` and imported only when used."""

from __future__ import annotations

import subprocess
import sys

import pytest

import kgrag


def test_dir_lists_the_public_api() -> None:
    names = dir(kgrag)
    assert set(kgrag.__all__) <= set(names)
    assert {"KnowledgeGraph", "Settings", "GraphSchema", "KgragError", "__version__"} <= set(names)
    assert {"__doc__", "__name__", "__path__"} <= set(names)
    assert not {"TYPE_CHECKING", "Any", "annotations"} & set(names)  # the module's own imports are not API
    assert names == sorted(names)


def test_every_public_name_resolves() -> None:
    for name in kgrag.__all__:
        assert getattr(kgrag, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kgrag.nope  # noqa: B018


def test_dir_does_not_import_the_api() -> None:
    code = "import sys, kgrag; dir(kgrag); assert 'kgrag.api' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
