"""The typed records that pass between pipeline stages.

Every stage takes and returns these pydantic models; no stage reaches into another's internals.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Document(BaseModel):
    """One ingested document. ``id`` is a content hash, so it is stable across runs."""

    id: str
    source: str  # file path, or "graph:<entity key>" for a verbalised neighbourhood
    title: str
    text: str
    derived: bool = False  # True for documents written from the graph itself
    # the Python codec the file's bytes were decoded with ("utf-8", "cp1252", "iso8859-1", ...); PDFs and
    # documents verbalised from the graph are not decoded from bytes and keep "utf-8"
    encoding: str = "utf-8"


class Passage(BaseModel):
    """A few consecutive sentences of one document, with character offsets into it."""

    id: int  # row in the FAISS index
    doc_id: str
    start: int
    end: int
    text: str
    derived: bool = False


class Hit(BaseModel):
    """One retrieved passage for an entity: cosine score and P(D|e) (softmax over the top K)."""

    passage: Passage
    score: float
    prob: float


class ExtractedTriple(BaseModel):
    """A triple as the generator produced it from one passage, with P(t|D) from token log-probs."""

    head: str
    head_type: str
    relation: str
    tail: str
    tail_type: str
    prob: float = 1.0
    # the model's share of P(continue the list) at the decision before this triple, when it was measured
    # (kgrag.generator.continuation): below 0.5 the triple exists because the list was kept going
    p_continue: float | None = None


class Extraction(BaseModel):
    """The generator's result for one passage (what the extraction cache stores)."""

    passage_id: int
    triples: list[ExtractedTriple] = Field(default_factory=list)
    completion_tokens: int = 0
    prompt_tokens: int = 0
    seconds: float = 0.0
    error: str | None = None  # set when the output was invalid; triples is then empty
    scored: bool = True  # False: the backend gave no token log-probabilities, so every P(t|D) is 1


class Evidence(BaseModel):
    """Where a triple came from: the passage, the located character span, and the weights."""

    doc_id: str
    passage_id: int
    start: int  # character span in the document (the passage when the text cannot be located)
    end: int
    p_doc: float  # P(D|e)
    p_triple: float  # P(t|e,D)
    derived: bool = False


class Triple(BaseModel):
    """A scored triple: confidence = sum over its grounded evidence of P(D|e)·P(t|e,D)."""

    head: str
    head_type: str
    relation: str
    tail: str
    tail_type: str
    confidence: float
    evidence: list[Evidence] = Field(default_factory=list)
    derived: bool = False  # supported only by documents verbalised from the graph

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return (self.head, self.head_type, self.relation, self.tail, self.tail_type)


class Fact(BaseModel):
    """One edge seen from an entity, as the lookup API returns it."""

    relation: str
    direction: str  # "out" (entity is the head) or "in" (entity is the tail)
    target: str
    target_type: str
    confidence: float
    derived: bool = False
    sources: list[Evidence] = Field(default_factory=list)


class Entity(BaseModel):
    """A resolved entity node."""

    key: str
    name: str
    type: str
    aliases: list[str] = Field(default_factory=list)
    facts: list[Fact] = Field(default_factory=list)


class NameMatch(BaseModel):
    """How a name matched entities of a graph (``KnowledgeGraph.match``).

    ``how`` is ``exact`` when the first entity's own name matched (up to case, accents, punctuation
    and articles), ``alias`` when one of its recorded aliases did, or its name with middle words left
    out or added, and ``closest`` when nothing matched and the nearest spelling was taken instead."""

    query: str
    keys: list[str]  # best connected first; never empty
    how: Literal["exact", "alias", "closest"]

    @property
    def key(self) -> str:
        """The entity ``lookup`` shows."""
        return self.keys[0]


class ResolvedGraph(BaseModel):
    """The output of resolution: canonical entities and merged triples naming them by key."""

    entities: list[Entity] = Field(default_factory=list)
    triples: list[Triple] = Field(default_factory=list)  # head/tail are entity keys here


class BuildReport(BaseModel):
    """What a build did and where its time went."""

    documents: int = 0
    passages: int = 0
    entities_expanded: list[str] = Field(default_factory=list)
    seeds_not_found: list[str] = Field(default_factory=list)  # seeds no passage retrieved for them mentions
    passages_read: int = 0  # distinct passages whose extraction the graph uses
    model_calls: int = 0  # passages actually sent to the model (the rest came from the cache)
    invalid_outputs: int = 0
    unscored_outputs: int = 0  # outputs without token log-probabilities (a server that sends none): P(t|D) = 1
    nodes: int = 0
    edges: int = 0
    hops_run: int = 0
    seconds: dict[str, float] = Field(default_factory=dict)  # embed, retrieve, decode, prefill, other, total
    status: str = "running"  # complete | interrupted | failed
    warnings: list[str] = Field(default_factory=list)  # what the user must know (an empty graph)

    @property
    def interrupted(self) -> bool:
        return self.status == "interrupted"
