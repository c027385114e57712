"""Training examples: the extraction prompt of a text (built by the extractor's own prompt code)
and the JSON answer for its gold triples, tokenized with the model's chat template so that only the
answer tokens (and the end-of-turn token) carry loss."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from kgrag.errors import KgragError
from kgrag.extract.demos import to_demo
from kgrag.extract.prompts import answer_json, build_messages, compact_system_prompt
from kgrag.io import read_lines
from kgrag.schema import GraphSchema

logger = logging.getLogger(__name__)
IGNORE = -100  # label of tokens that carry no loss


class TrainPair(BaseModel):
    """One supervised example as chat turns: the prompt messages and the assistant's JSON answer."""

    id: str
    messages: list[dict[str, str]]
    target: str


class TokenizedExample(BaseModel):
    id: str
    input_ids: list[int]
    labels: list[int]

    @property
    def answer_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


PROMPT_STYLE = "compact"  # the extractor's prompt_style for adapters trained here


def prompt_messages(schema: GraphSchema, text: str, max_triples: int) -> list[dict[str, str]]:
    """The prompt a fine-tuned adapter is trained on and later run with, built by the same code as
    the extractor's ``prompt_style="compact"``: the short system prompt and the passage, no examples."""
    return build_messages(schema, compact_system_prompt(schema, max_triples), text, examples=[])


def read_pairs(path: Path, schema: GraphSchema, max_triples: int, limit: int | None = None) -> list[TrainPair]:
    """Training pairs from a JSONL file; lines that are not JSON or teach nothing about the schema
    are skipped with a count in the log."""
    pairs: list[TrainPair] = []
    skipped = 0
    for number, line in enumerate(read_lines(Path(path), None), 1):
        if limit is not None and len(pairs) >= limit:
            break
        try:
            record: dict[str, Any] = json.loads(line)
            demo = to_demo(record, schema) if isinstance(record, dict) else None
        except ValueError:
            demo = None
        if demo is None:
            skipped += 1
            continue
        pairs.append(
            TrainPair(
                id=str(record.get("id", number)),
                messages=prompt_messages(schema, demo["text"], max_triples),
                target=answer_json(demo["triples"][:max_triples]),
            )
        )
    if skipped:
        logger.warning("%s: skipped %d line(s) that are not JSON or have no triple the schema allows", path, skipped)
    if not pairs:
        raise KgragError(f"{path}: no usable training examples for schema {schema.name!r}")
    return pairs


def split_dev(
    pairs: list[TrainPair], fraction: float, max_dev: int, seed: int
) -> tuple[list[TrainPair], list[TrainPair]]:
    """A seeded held-out split: (train, dev). Dev is empty when the fraction or the data is too small."""
    n_dev = min(max_dev, int(len(pairs) * fraction))
    if n_dev == 0 or len(pairs) - n_dev < 1:
        return list(pairs), []
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    dev_ids = set(order[:n_dev])
    train = [p for i, p in enumerate(pairs) if i not in dev_ids]
    dev = [p for i, p in enumerate(pairs) if i in dev_ids]
    return train, dev


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize(tokenizer: Any, pair: TrainPair) -> TokenizedExample:
    """Prompt and answer through the chat template; labels mask the prompt."""
    prompt = tokenizer.apply_chat_template(pair.messages, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(
        [*pair.messages, {"role": "assistant", "content": pair.target}], tokenize=False
    )
    if not full.startswith(prompt):
        raise KgragError("the chat template does not extend the prompt with the answer; cannot mask the prompt")
    prompt_ids = _ids(tokenizer, prompt)
    answer_ids = _ids(tokenizer, full[len(prompt) :].rstrip("\n"))
    return TokenizedExample(
        id=pair.id, input_ids=prompt_ids + answer_ids, labels=[IGNORE] * len(prompt_ids) + answer_ids
    )


def tokenize_all(tokenizer: Any, pairs: list[TrainPair], max_seq_len: int) -> list[TokenizedExample]:
    """Tokenized examples, without those longer than ``max_seq_len`` (counted in the log)."""
    examples = [tokenize(tokenizer, pair) for pair in pairs]
    kept = [e for e in examples if len(e.input_ids) <= max_seq_len]
    if len(kept) < len(examples):
        logger.warning("skipped %d example(s) longer than max_seq_len=%d", len(examples) - len(kept), max_seq_len)
    return kept


def collate(examples: list[TokenizedExample], pad_id: int) -> dict[str, Any]:
    """Right-padded tensors for one micro-batch."""
    import torch

    width = max(len(e.input_ids) for e in examples)
    ids = [e.input_ids + [pad_id] * (width - len(e.input_ids)) for e in examples]
    labels = [e.labels + [IGNORE] * (width - len(e.labels)) for e in examples]
    mask = [[1] * len(e.input_ids) + [0] * (width - len(e.input_ids)) for e in examples]
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "attention_mask": torch.tensor(mask, dtype=torch.long),
        "labels": torch.tensor(labels, dtype=torch.long),
    }
