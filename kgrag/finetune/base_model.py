"""The base generator in transformers, loaded from the same verified GGUF that llama.cpp runs.

transformers dequantizes the GGUF to fp32 (``gguf_file=``, needs the ``gguf`` package); the GGUF's
tokenizer and chat template come with it, so training tokenizes exactly what llama.cpp will see.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path
from typing import Any

from kgrag.errors import KgragError

logger = logging.getLogger(__name__)


def load_tokenizer(gguf_path: Path) -> Any:
    from transformers import AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    if tokenizer.chat_template is None:
        raise KgragError(f"{gguf_path.name} has no chat template; cannot build training prompts")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(gguf_path: Path) -> Any:
    """The fp32 causal LM of a GGUF (about 60 s and 3 GB for the 0.5B model)."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logger.info("loading %s into transformers (dequantizing to fp32)", gguf_path.name)
    hf_logging.disable_progress_bar()
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf_path.parent), gguf_file=gguf_path.name, dtype="float32"
            )
    except (OSError, ValueError) as exc:
        raise KgragError(f"transformers cannot load {gguf_path.name}: {exc}") from exc
    finally:
        hf_logging.enable_progress_bar()
    return model
