"""Graph schemas: YAML/JSON → ``GraphSchema`` → a pydantic extraction model that constrains decoding."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, create_model, field_validator, model_validator

from kgrag.errors import KgragError

MAX_NAME_CHARS = 80
TRIPLE_FIELDS = ("head", "head_type", "relation", "tail", "tail_type")

BUNDLED_DIR = Path(__file__).resolve().parent / "schemas"
DEFAULT_SCHEMA = "default"  # the bundled schema a build uses when none is given
BUNDLED_SUFFIX = ".yaml"


def bundled_schemas() -> dict[str, Path]:
    """Schemas shipped inside the package (``kgrag/schemas/<name>.yaml``), by name (the file stem)."""
    if not BUNDLED_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(BUNDLED_DIR.glob(f"*{BUNDLED_SUFFIX}")) if p.is_file()}


def resolve_schema(value: Path | str) -> Path:
    """The file a schema setting names: an existing file wins; otherwise a bundled schema's name, with or
    without ``.yaml``; otherwise one KgragError line that names ``value`` and lists the bundled names."""
    path = Path(value).expanduser()
    if path.is_file():
        return path
    bundled = bundled_schemas()
    name = str(value).removesuffix(BUNDLED_SUFFIX)
    if name in bundled:
        return bundled[name]
    if path.exists():  # a folder, say: let the reader say why it cannot be read
        return path
    known = ", ".join(bundled) or "none"
    stem = path.name.removesuffix(BUNDLED_SUFFIX)
    hint = f" (did you mean {stem!r}?)" if stem in bundled else ""
    raise KgragError(f"unknown schema '{value}': not a file, and the bundled schemas are {known}{hint}")


class EntityType(BaseModel, extra="forbid"):
    name: str
    description: str = ""
    expand: bool = True  # whether entities of this type join the expansion frontier (no for dates)
    compatible: list[str] = Field(default_factory=list)  # other types that may name the same entity
    # entities of this type have names: one written without a capital letter or a digit ("the band",
    # "churches", "other clergymen") is a description, and a triple with it is dropped
    named: bool = False
    # a name of this type qualified by commas ("Sacramento, California") names its first part, and the
    # build adds the facts the qualifiers state with this relation (Sacramento located_in California)
    qualifier_relation: str | None = None


class RelationType(BaseModel, extra="forbid"):
    name: str
    description: str = ""
    domain: list[str] = Field(default_factory=list)  # allowed head types; empty = any
    range: list[str] = Field(default_factory=list)  # allowed tail types; empty = any

    @field_validator("domain", "range", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def _named(items: Any) -> Any:
    """Accept ``- Person`` as shorthand for ``- name: Person``."""
    if isinstance(items, list):
        return [{"name": item} if isinstance(item, str) else item for item in items]
    return items


class GraphSchema(BaseModel, extra="forbid"):
    """Entity and relation types of a graph, with optional descriptions and domain/range."""

    name: str = "schema"
    description: str = ""
    entity_types: list[EntityType] = Field(min_length=1)
    relation_types: list[RelationType] = Field(default_factory=list)
    examples: list[dict[str, Any]] = Field(default_factory=list)  # {"text": ..., "triples": [[h, ht, r, t, tt]]}

    _prep = field_validator("entity_types", "relation_types", mode="before")(lambda cls, v: _named(v))

    @model_validator(mode="after")
    def _check_types(self) -> GraphSchema:
        known = {t.name for t in self.entity_types}
        for etype in self.entity_types:
            for other in etype.compatible:
                if other not in known:
                    raise ValueError(f"entity type {etype.name!r} compatible names unknown entity type {other!r}")
            if etype.qualifier_relation is not None and self.relation(etype.qualifier_relation) is None:
                raise ValueError(
                    f"entity type {etype.name!r} qualifier_relation names unknown relation {etype.qualifier_relation!r}"
                )
        for rel in self.relation_types:
            for field in ("domain", "range"):
                for type_name in getattr(rel, field):
                    if type_name not in known:
                        raise ValueError(f"relation {rel.name!r} {field} names unknown entity type {type_name!r}")
        return self

    @classmethod
    def load(cls, path: Path | str) -> GraphSchema:
        """Load a schema file or a bundled schema by name (:func:`resolve_schema`); any problem becomes
        one KgragError naming the file and field."""
        path = resolve_schema(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise KgragError(f"cannot read schema {path}: {exc}") from exc
        try:
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            mark = getattr(exc, "problem_mark", None)  # PyYAML's own message spans several lines
            detail = (
                f"{getattr(exc, 'problem', exc)} (line {mark.line + 1}, column {mark.column + 1})" if mark else str(exc)
            )
            detail = " ".join(detail.split())
            raise KgragError(f"schema {path} is not valid {path.suffix.lstrip('.') or 'YAML'}: {detail}") from exc
        if not isinstance(data, dict):
            raise KgragError(f"schema {path}: expected a mapping with entity_types and relation_types")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise KgragError(f"schema {path}: field {where}: {err['msg']}") from exc

    @property
    def entity_type_names(self) -> list[str]:
        return [t.name for t in self.entity_types]

    @property
    def relation_names(self) -> list[str]:
        return [r.name for r in self.relation_types]

    def relation(self, name: str) -> RelationType | None:
        return next((r for r in self.relation_types if r.name == name), None)

    def expandable(self, type_name: str) -> bool:
        etype = next((t for t in self.entity_types if t.name == type_name), None)
        return etype.expand if etype else True

    def compatible(self, a: str, b: str) -> bool:
        """Whether an entity typed ``a`` in one passage and ``b`` in another may be the same entity
        (equal types, or one lists the other as ``compatible``)."""
        if a == b:
            return True
        types = {t.name: t for t in self.entity_types}
        return (a in types and b in types[a].compatible) or (b in types and a in types[b].compatible)

    def qualifier_relation(self, type_name: str) -> str | None:
        etype = next((t for t in self.entity_types if t.name == type_name), None)
        return etype.qualifier_relation if etype is not None else None

    def unnamed(self, type_name: str, name: str) -> bool:
        """True when entities of this type are ``named`` and ``name`` has no capital letter or digit."""
        etype = next((t for t in self.entity_types if t.name == type_name), None)
        return etype is not None and etype.named and not any(c.isupper() or c.isdigit() for c in name)

    def violation(self, head_type: str, relation: str, tail_type: str) -> str | None:
        """Why a typed triple breaks the schema's domain/range, or None when it fits."""
        rel = self.relation(relation)
        if rel is None:
            return None
        if rel.domain and head_type not in rel.domain:
            return f"{relation} needs a head of type {'/'.join(rel.domain)}, got {head_type}"
        if rel.range and tail_type not in rel.range:
            return f"{relation} needs a tail of type {'/'.join(rel.range)}, got {tail_type}"
        return None

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def reading_fingerprint(self) -> str:
        """The fingerprint of what the model reads of the schema: without the fields that steer only
        filtering, resolution and expansion (``expand``, ``compatible``, ``named``,
        ``qualifier_relation``), which a build applies anew to its cached extractions, so changing
        them never asks for a reset."""
        steering = {"expand", "compatible", "named", "qualifier_relation"}
        dump = self.model_dump_json(exclude={"entity_types": {"__all__": steering}})
        return hashlib.sha256(dump.encode()).hexdigest()[:16]

    def triple_type(self, open_relations: bool = False) -> Any:
        """The type of one generated triple: ``[head, head_type, relation, tail, tail_type]``, a
        fixed-length JSON array (half the tokens of an object with keys, so twice as fast to decode)."""
        entity: Any = Literal[tuple(self.entity_type_names)]  # type: ignore[valid-type]
        if open_relations or not self.relation_types:
            relation: Any = Annotated[str, Field(min_length=1, max_length=40)]
        else:
            relation = Literal[tuple(self.relation_names)]  # type: ignore[valid-type]
        name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
        return tuple[name, entity, relation, name, entity]  # type: ignore[valid-type]

    def extraction_model(self, max_triples: int, open_relations: bool = False) -> type[BaseModel]:
        """The pydantic model the generator must fill; its JSON schema is the decoding grammar."""
        triple = self.triple_type(open_relations)
        return create_model(
            "Extraction",
            triples=(list[triple], Field(default_factory=list, max_length=max_triples)),  # type: ignore[valid-type]
        )
