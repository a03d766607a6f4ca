"""Records that cross module boundaries.

Every record is a dataclass with ``to_dict`` / ``from_dict`` so that trajectories, verdicts and
samples serialise to JSONL and back without loss. Nothing here imports torch, transformers or any
network library.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from deepmmsearch import jsontext

SCHEMA_VERSION = 1

ActionKind = Literal["answer", "text_search", "image_search", "invalid"]
StopReason = Literal[
    "answer",  # the model wrote <answer>
    "max_turns",  # turn budget spent without an answer
    "token_budget",  # response-token budget spent
    "invalid_actions",  # too many invalid actions in a row
    "policy_error",  # the policy itself failed (network, OOM, ...)
]


def _asdict(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _asdict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_asdict(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _asdict(v) for k, v in obj.items()}
    return obj


class Record:
    """Mixin: ``to_dict`` / ``from_dict`` / ``to_json`` for (nested) dataclass records."""

    def to_dict(self) -> dict[str, Any]:
        return _asdict(self)

    def to_json(self) -> str:
        return jsontext.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        kwargs = {}
        hints = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        for name, value in data.items():
            if name not in hints:
                continue  # forward compatibility: ignore fields written by newer versions
            sub = _NESTED.get((cls.__name__, name))
            if sub is not None and value is not None:
                if isinstance(value, list):
                    value = [sub.from_dict(v) for v in value]
                else:
                    value = sub.from_dict(value)
            elif isinstance(value, list) and name in _TUPLE_FIELDS.get(cls.__name__, ()):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class Box(Record):
    """A box in pixel coordinates of the original image: (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    def as_list(self) -> list[float]:
        return [self.x1, self.y1, self.x2, self.y2]


@dataclass(frozen=True)
class Action(Record):
    """One parsed model turn (see :func:`deepmmsearch.protocol.parse_action`).

    ``argument`` is the answer, the text query, or the referring expression. For image search,
    ``whole_image`` is set for ``<img>``, and ``box`` when the model grounded the entity itself.
    """

    kind: ActionKind
    argument: str = ""
    reason: str | None = None
    whole_image: bool = False
    box: Box | None = None
    error: str | None = None  # why the turn is invalid


@dataclass(frozen=True)
class SearchHit(Record):
    title: str
    url: str
    snippet: str = ""
    thumbnail: str | None = None  # path or URL of the matched image (image search)
    score: float | None = None
    date: str | None = None


@dataclass
class ToolCall(Record):
    """Everything about one tool call, as stored in the trajectory."""

    kind: Literal["text_search", "image_search"]
    backend: str
    query: str | None = None  # text query, or the referring expression for a crop
    whole_image: bool = False
    box: Box | None = None  # the box that was searched (after grounding and padding)
    grounder: str | None = None
    crop_path: str | None = None  # the crop that was searched
    boxed_path: str | None = None  # the original image with the box drawn on it
    hits: list[SearchHit] = field(default_factory=list)
    summary: str = ""
    summarizer: str | None = None
    latency_s: float = 0.0
    cache_hit: bool = False
    error: str | None = None
    note: str | None = None  # e.g. "crop search disabled: searched the whole image"


@dataclass
class Turn(Record):
    """One model turn and what the environment injected after it."""

    index: int
    model_text: str
    action: Action
    observation: str | None = None  # the exact injected text (an <information> block ...)
    tool_call: ToolCall | None = None
    n_tokens: int | None = None  # tokens the policy generated for this turn
    latency_s: float = 0.0


@dataclass
class Verdict(Record):
    """A judge's decision. ``correct`` is None when the judge's reply could not be parsed."""

    correct: bool | None
    judge: str
    raw: str = ""
    reason: str = ""
    score: float | None = None  # e.g. VQA accuracy in [0, 1]


@dataclass
class Message(Record):
    """A neutral chat message. ``content`` may hold the ``<image>`` placeholder once per image.

    Roles: ``system``, ``user``, ``assistant`` and ``tool`` (text injected by the environment;
    our chat template renders it inline in the assistant turn, masked from the loss).
    """

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    images: tuple[str, ...] = ()


@dataclass
class Trajectory(Record):
    id: str
    question: str
    image: str | None
    turns: list[Turn] = field(default_factory=list)
    answer: str | None = None
    sources: list[str] = field(default_factory=list)  # URLs the answer drew on
    stop_reason: str | None = None
    prompt: list[Message] = field(default_factory=list)  # the initial messages
    gold: list[str] = field(default_factory=list)  # gold answers, when known
    verdict: Verdict | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    schema_version: int = SCHEMA_VERSION

    @property
    def tool_calls(self) -> list[ToolCall]:
        return [t.tool_call for t in self.turns if t.tool_call is not None]

    def messages(self) -> list[Message]:
        """The whole conversation: prompt, then model turns and tool injections."""
        return conversation(self.prompt, self.turns)


def conversation(prompt: list[Message], turns: list[Turn]) -> list[Message]:
    """The one conversation of an episode: the prompt, then each model turn as an assistant
    message and its injection as a tool one. Used by :meth:`Trajectory.messages` and the live
    episode (through :mod:`deepmmsearch.conversation.messages`); it lives with the records so
    that the conversation core can build on them without an import cycle."""
    out = list(prompt)
    for t in turns:
        out.append(Message("assistant", t.model_text))
        if t.observation is not None:
            out.append(Message("tool", t.observation))
    return out


@dataclass
class Sample(Record):
    """One benchmark question, whatever dataset it came from."""

    id: str
    question: str
    answers: list[str]  # gold answers and aliases; the first is canonical
    image: str | None = None  # path; loaders that read bytes write them to a cache dir
    question_type: str | None = None
    source: str = ""
    split: str | None = None
    choices: list[str] | None = None
    category: str | None = None
    search_required: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


_NESTED: dict[tuple[str, str], Any] = {
    ("Action", "box"): Box,
    ("ToolCall", "box"): Box,
    ("ToolCall", "hits"): SearchHit,
    ("Turn", "action"): Action,
    ("Turn", "tool_call"): ToolCall,
    ("Trajectory", "turns"): Turn,
    ("Trajectory", "prompt"): Message,
    ("Trajectory", "verdict"): Verdict,
}
_TUPLE_FIELDS: dict[str, tuple[str, ...]] = {"Message": ("images",)}


def read_jsonl(path: str, cls: type[Record] | None = None) -> list[Any]:
    """Read a JSONL file; skips blank lines. With ``cls``, rows become records."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                obj = json.loads(line)
                rows.append(cls.from_dict(obj) if cls else obj)
    return rows
