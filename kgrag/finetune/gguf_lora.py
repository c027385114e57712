"""PEFT LoRA adapter -> llama.cpp GGUF LoRA (``Llama(lora_path=...)``).

Follows llama.cpp's ``convert_lora_to_gguf.py`` (shipped in its source): an ``adapter`` GGUF with
``adapter.type = lora`` and ``adapter.lora.alpha``, and for every adapted weight ``W`` of the base
model two tensors ``<gguf name of W>.lora_a`` (rank x in) and ``.lora_b`` (out x rank). Tensor names
come from the ``gguf`` package's own HF -> GGUF name map. For llama-architecture models the GGUF
stores q/k projections with their rows permuted for llama.cpp's rotary layout (transformers undoes
that when it loads a GGUF), so ``lora_b`` of q/k gets the same row permutation as the base weight.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from kgrag.errors import KgragError
from kgrag.io import atomic_path

logger = logging.getLogger(__name__)

_PREFIX = "base_model.model."


def _arch(model_type: str) -> Any:
    import gguf

    names = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    if model_type not in names:
        raise KgragError(f"cannot convert a LoRA for model type {model_type!r} to GGUF")
    return names[model_type]


def permute_rows(weights: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """llama.cpp's q/k row permutation (``LlamaModel.permute`` in convert_hf_to_gguf.py)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    shape = weights.shape
    return weights.reshape(n_head, 2, shape[0] // n_head // 2, *shape[1:]).swapaxes(1, 2).reshape(shape)


def _pairs(state: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
    """{hf weight name: {"A": ..., "B": ...}} from a PEFT state dict."""
    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, tensor in state.items():
        for marker, key in ((".lora_A.weight", "A"), (".lora_B.weight", "B")):
            if name.endswith(marker):
                base = name.removeprefix(_PREFIX)[: -len(marker)] + ".weight"
                pairs.setdefault(base, {})[key] = tensor.detach().float().cpu().numpy()
                break
        else:
            raise KgragError(f"unexpected tensor {name!r} in the adapter: only LoRA A/B weights convert")
    return pairs


def write_gguf_lora(state: dict[str, Any], alpha: float, config: Any, out: Path) -> Path:
    """Write the LoRA weights ``state`` (PEFT names) for a base model with HF ``config`` to ``out``."""
    import gguf

    arch = _arch(config.model_type)
    name_map = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    permute = arch == gguf.MODEL_ARCH.LLAMA
    n_head, n_head_kv = config.num_attention_heads, getattr(config, "num_key_value_heads", None)
    with atomic_path(out) as tmp:
        writer = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[arch])
        writer.add_type(gguf.GGUFType.ADAPTER)
        writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
        writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(alpha))
        for hf_name, pair in sorted(_pairs(state).items()):
            if set(pair) != {"A", "B"}:
                raise KgragError(f"adapter weight {hf_name} lacks its lora_A or lora_B half")
            target = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
            if target is None:
                raise KgragError(f"no llama.cpp tensor for {hf_name}")
            lora_b = pair["B"]
            if permute and hf_name.endswith("q_proj.weight"):
                lora_b = permute_rows(lora_b, n_head, n_head)
            elif permute and hf_name.endswith("k_proj.weight"):
                lora_b = permute_rows(lora_b, n_head, n_head_kv)
            writer.add_tensor(f"{target}.lora_a", np.ascontiguousarray(pair["A"], dtype=np.float16))
            writer.add_tensor(f"{target}.lora_b", np.ascontiguousarray(lora_b, dtype=np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    logger.info("wrote llama.cpp LoRA %s (%.1f MB)", out, out.stat().st_size / 1e6)
    return out
