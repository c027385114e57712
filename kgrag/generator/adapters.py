"""A fine-tuned adapter folder: the PEFT adapter, its llama.cpp GGUF conversion and a manifest that
records the base model's SHA-256 (checked on load), the prompt style and the training config.
``kgrag finetune`` writes these folders; this module reads and checks them and names their files,
so running a model never imports the training code."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from kgrag.errors import KgragError
from kgrag.generator.registry import verified_gguf
from kgrag.io import sha256_file, write_json_atomic

logger = logging.getLogger(__name__)

MANIFEST = "kgrag-adapter.json"
GGUF_NAME = "adapter.gguf"
FORMAT = "kgrag-lora-v1"


class AdapterManifest(BaseModel):
    """What ``kgrag-adapter.json`` says about an adapter."""

    format: str = FORMAT
    name: str = Field(description="the adapter folder's name when it was written")
    base_model: str = Field(description="bundled model name or .gguf path the adapter was trained on")
    base_sha256: str
    adapter_sha256: str = Field(description="SHA-256 of adapter.gguf")
    prompt_style: str = Field(description="the extractor prompt style the adapter was trained with")
    prompt_version: str
    schema_name: str
    schema_fingerprint: str
    max_triples: int
    training: dict[str, Any] = Field(description="the FinetuneSettings of the run")
    results: dict[str, Any] = Field(default_factory=dict, description="steps, losses, timings")


BUNDLED_DIR = Path(__file__).resolve().parents[1] / "adapters"


def bundled_adapters() -> dict[str, Path]:
    """Adapters shipped inside the package (``kgrag/adapters/<name>/``), usable as ``--model <name>``."""
    if not BUNDLED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(BUNDLED_DIR.iterdir()) if (p / MANIFEST).is_file()}


def adapter_dir(model: str | Path) -> Path | None:
    """The adapter folder ``model`` names (a bundled adapter's name or a folder with a manifest), else None."""
    bundled = bundled_adapters().get(str(model))
    if bundled is not None:
        return bundled
    path = Path(model).expanduser()
    return path if path.is_dir() and (path / MANIFEST).is_file() else None


def is_adapter_dir(value: str | Path) -> bool:
    return adapter_dir(value) is not None


def read_manifest(folder: str | Path) -> AdapterManifest:
    path = (adapter_dir(folder) or Path(folder).expanduser()) / MANIFEST
    try:
        return AdapterManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KgragError(f"cannot read adapter manifest {path}: {exc}") from exc
    except ValidationError as exc:
        raise KgragError(f"{path} is not a kgrag adapter manifest ({exc.error_count()} errors)") from exc


def write_manifest(folder: Path, manifest: AdapterManifest) -> None:
    write_json_atomic(folder / MANIFEST, manifest.model_dump(mode="json"), newline=True)


class ResolvedAdapter(BaseModel):
    """An adapter ready for llama.cpp: the verified base GGUF and the LoRA GGUF."""

    base_path: Path
    lora_path: Path
    manifest: AdapterManifest


def resolve_adapter(folder: str | Path) -> ResolvedAdapter:
    """Check the adapter folder and its base model's SHA-256; a mismatch is a one-line error."""
    folder = adapter_dir(folder) or Path(folder).expanduser()
    manifest = read_manifest(folder)
    lora = folder / GGUF_NAME
    if not lora.is_file():
        raise KgragError(f"adapter {folder} has no {GGUF_NAME}; re-run kgrag finetune to convert it")
    if sha256_file(lora) != manifest.adapter_sha256:
        raise KgragError(f"{lora}: SHA-256 does not match the manifest (file changed or corrupt)")
    base_path, base_sha = verified_gguf(manifest.base_model)
    if base_sha != manifest.base_sha256:
        raise KgragError(
            f"adapter {folder.name} was trained on a base model with SHA-256 {manifest.base_sha256[:12]}…, "
            f"but {manifest.base_model} is {base_sha[:12]}…"
        )
    return ResolvedAdapter(base_path=base_path, lora_path=lora, manifest=manifest)
