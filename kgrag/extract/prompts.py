"""Extraction prompts. The fixed part (instructions, schema, examples) comes first, the passage last,
so llama.cpp reuses the evaluated prefix from one passage to the next. Bump PROMPT_VERSION in
kgrag.config whenever the wording changes: it is part of the extraction cache key."""

from __future__ import annotations

import json
from typing import Any

from kgrag.schema import GraphSchema, RelationType

INSTRUCTIONS = """You extract a knowledge graph from a text passage.
Return JSON: {{"triples": [[head, head_type, relation, tail, tail_type], ...]}}.
Rules:
- Only facts the passage states explicitly. Never guess, never use outside knowledge.
- head and tail are short entity names copied from the passage (full names, no pronouns).
- The relation must read naturally as "head relation tail".
- At most {max_triples} triples, each fact once. If the passage states no fact, return {{"triples": []}}."""


def _type_lines(schema: GraphSchema) -> list[str]:
    return [f"- {t.name}: {t.description}".rstrip(": ") for t in schema.entity_types]


def _signature(rel: RelationType) -> str:
    if not (rel.domain or rel.range):
        return ""
    return f" ({'/'.join(rel.domain) or 'any'} -> {'/'.join(rel.range) or 'any'})"


def _relation_lines(schema: GraphSchema) -> list[str]:
    lines = []
    for rel in schema.relation_types:
        signature = _signature(rel)
        description = f": {rel.description}" if rel.description else ""
        lines.append(f"- {rel.name}{signature}{description}")
    return lines


def answer_json(triples: list[list[str]]) -> str:
    """The assistant turn for a list of typed triples: exactly the JSON the extraction model accepts."""
    return json.dumps({"triples": triples}, ensure_ascii=False)


def system_prompt(schema: GraphSchema, max_triples: int, open_relations: bool = False) -> str:
    parts = [INSTRUCTIONS.format(max_triples=max_triples), "", "Entity types:", *_type_lines(schema)]
    if schema.relation_types:
        heading = "Relations (prefer these names):" if open_relations else "Relations (use only these):"
        parts += ["", heading, *_relation_lines(schema)]
    return "\n".join(parts)


def compact_system_prompt(schema: GraphSchema, max_triples: int, open_relations: bool = False) -> str:
    """A short system prompt for fine-tuned adapters, which learnt the rules and the format from
    training: the output shape, the type names and the relation signatures, no descriptions or
    examples. About a fifth of the full prompt's tokens, which is what training time scales with."""
    lines = [
        "Extract knowledge-graph triples stated in the passage. Return JSON "
        f'{{"triples": [[head, head_type, relation, tail, tail_type], ...]}}, at most {max_triples} triples.',
        f"Entity types: {', '.join(schema.entity_type_names)}.",
    ]
    if schema.relation_types:
        signatures = [rel.name + _signature(rel) for rel in schema.relation_types]
        heading = "Relations (prefer these)" if open_relations else "Relations"
        lines.append(f"{heading}: {', '.join(signatures)}.")
    return "\n".join(lines)


def build_messages(
    schema: GraphSchema, system: str, passage_text: str, examples: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """System prompt, then the examples (the schema's, unless ``examples`` is given) as earlier
    turns, then the passage."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for example in schema.examples if examples is None else examples:
        messages.append({"role": "user", "content": f"Passage: {example['text']}"})
        messages.append({"role": "assistant", "content": answer_json(example["triples"])})
    messages.append({"role": "user", "content": f"Passage: {passage_text}"})
    return messages
