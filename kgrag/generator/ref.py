"""What a ``--model`` value means, decided once: a bundled model, a bundled or local LoRA adapter
folder, or a path to any chat GGUF; several, comma-separated, are a mixture."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from kgrag.errors import KgragError
from kgrag.generator.adapters import (
    GGUF_NAME,
    AdapterManifest,
    adapter_dir,
    bundled_adapters,
    read_manifest,
    resolve_adapter,
)
from kgrag.generator.registry import REGISTRY, check_available, model_status, resolve_model

MODEL_SEPARATOR = ","


def model_names(model: str) -> list[str]:
    """The models of a ``--model`` value: one name, or several separated by commas."""
    names = [name.strip() for name in model.split(MODEL_SEPARATOR)]
    return list(dict.fromkeys(name for name in names if name))


class ModelRef(BaseModel):
    """One model named on the command line, in the settings or through the API."""

    model_config = ConfigDict(frozen=True)

    value: str  # as the user wrote it
    kind: Literal["bundled", "adapter", "gguf"]
    folder: Path | None = None  # the adapter folder
    manifest: AdapterManifest | None = None  # the adapter's kgrag-adapter.json

    @classmethod
    def parse(cls, value: str) -> ModelRef:
        """Classify ``value`` without loading anything: an adapter folder (a bundled adapter's name or
        a folder with a manifest), a bundled model's name, or else a GGUF path (checked on load)."""
        folder = adapter_dir(value)
        if folder is not None:
            return cls(value=value, kind="adapter", folder=folder, manifest=read_manifest(folder))
        if value in REGISTRY:
            return cls(value=value, kind="bundled")
        return cls(value=value, kind="gguf")

    @classmethod
    def parse_all(cls, value: str) -> list[ModelRef]:
        """The models of a ``--model`` value (a mixture when there are several)."""
        return [cls.parse(name) for name in model_names(value) or [value]]

    @property
    def base(self) -> ModelRef:
        """The model whose weights run: an adapter's base model, else the model itself."""
        return ModelRef.parse(self.manifest.base_model) if self.manifest is not None else self

    @property
    def identity(self) -> str:
        """Name + hash of the weights, known without loading them (part of the cache key)."""
        if self.manifest is not None:
            return f"{self.base.identity}+lora:{self.manifest.name}@{self.manifest.adapter_sha256[:12]}"
        if self.kind == "bundled":
            return f"{self.value}@{REGISTRY[self.value].sha256[:12]}"
        path = Path(self.value)
        stat = path.stat() if path.exists() else None
        return f"{path.name}@{stat.st_size if stat else 'missing'}"

    @property
    def prompt_style(self) -> str:
        """The extractor prompt the model expects: "full" (instructions, descriptions, few-shot
        examples), or what a fine-tuned adapter's manifest says it was trained with."""
        return self.manifest.prompt_style if self.manifest is not None else "full"

    @property
    def seconds_per_passage(self) -> float:
        """About how long the model takes per passage on this project's 2-core machine: the measured
        figure of a bundled model, else scaled from the 1.5B's by file size."""
        if self.kind == "adapter":
            return self.base.seconds_per_passage
        reference = REGISTRY["qwen2.5-1.5b"]
        if self.kind == "bundled":
            spec = REGISTRY[self.value]
            size = spec.size_bytes
            if spec.seconds_per_passage is not None:
                return spec.seconds_per_passage
        else:
            path = Path(self.value).expanduser()
            size = path.stat().st_size if path.is_file() else reference.size_bytes
        return (reference.seconds_per_passage or 10.0) * size / reference.size_bytes

    @property
    def parallel(self) -> int:
        """Passages decoded at once in-process: the measured best of a bundled model (an adapter's
        base's), else that of the bundled model nearest in file size."""
        if self.kind == "adapter":
            return self.base.parallel
        if self.kind == "bundled":
            return REGISTRY[self.value].parallel
        path = Path(self.value).expanduser()
        size = path.stat().st_size if path.is_file() else 0
        return min(REGISTRY.values(), key=lambda spec: abs(spec.size_bytes - size)).parallel

    def check(self) -> None:
        """Fail fast, before anything loads: an unknown name or a missing file is one line listing
        the names that would work; a bundled model whose packages are missing names the pip command."""
        if self.kind == "adapter":
            if self.folder is None or not (self.folder / GGUF_NAME).is_file():
                raise KgragError(f"adapter {self.value} has no {GGUF_NAME}; re-run kgrag finetune to convert it")
            self.base.check()
        elif self.kind == "bundled":
            check_available(self.value)
        elif not Path(self.value).expanduser().is_file():
            raise KgragError(
                f"unknown model {self.value!r}: not a bundled model or adapter ({', '.join(self.known())}), "
                "nor an existing .gguf file or adapter folder"
            )

    def weights(self) -> tuple[Path, Path | None]:
        """The verified GGUF to load and the LoRA GGUF to apply (None without an adapter); bundled
        models are assembled on first use. Problems are one-line errors."""
        if self.kind == "adapter":
            adapter = resolve_adapter(self.folder or self.value)
            return adapter.base_path, adapter.lora_path
        return resolve_model(self.value), None

    @staticmethod
    def known() -> list[str]:
        """The names ``--model`` accepts besides paths: bundled models, then bundled adapters."""
        return [entry.name for entry in catalogue()]


class CatalogueEntry(BaseModel):
    """One name ``--model`` accepts, as ``kgrag models list`` shows it."""

    name: str
    description: str
    status: str  # bundled models: installed / assembled / verified; adapters: their folder


def catalogue() -> list[CatalogueEntry]:
    """Every bundled model, then every bundled adapter."""
    entries = [
        CatalogueEntry(name=name, description=spec.description, status=str(model_status(name)))
        for name, spec in REGISTRY.items()
    ]
    for name, folder in bundled_adapters().items():
        manifest = read_manifest(folder)
        description = f"LoRA adapter on {manifest.base_model} for schema {manifest.schema_name}"
        entries.append(CatalogueEntry(name=name, description=description, status=str(folder)))
    return entries


def model_identity(model: str) -> str:
    """:attr:`ModelRef.identity` of a ``--model`` value."""
    return ModelRef.parse(model).identity


def prompt_style(model: str) -> str:
    """:attr:`ModelRef.prompt_style` of a ``--model`` value."""
    return ModelRef.parse(model).prompt_style
