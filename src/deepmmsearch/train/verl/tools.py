"""veRL tools and the tag parser: our backends behind veRL's ``BaseTool`` / ``ToolParser``.

The tool YAML (``actor_rollout_ref.rollout.multi_turn.tool_config_path``) lists both tools with
the agent config they run (``configs/verl/tools.yaml``)::

    tools:
      - class_name: deepmmsearch.train.verl.tools.TextSearchTool
        config: {type: native, agent_config: configs/verl/agent_fixture.yaml}
      - class_name: deepmmsearch.train.verl.tools.ImageSearchTool
        config: {type: native, agent_config: configs/verl/agent_fixture.yaml}

veRL imports this module when it loads that YAML (in the driver and in every agent-loop
worker), which also registers the parser ``deepmmsearch_tags``
(``multi_turn.format=deepmmsearch_tags``). Both loops use the tools: ``deepmmsearch_agent`` takes
its agent config (and the shared toolbox) from them; the stock ``tool_agent`` calls them.

**Parser** (:func:`deepmmsearch.train.verl.session.tool_action`): the decoded turn's first action
after its ``</reason>``; ``text_search`` → ``text_search(query)``, ``img_search`` →
``img_search(expression)`` (``<img>``: the whole image); an answer or a malformed turn → no call.

**Tools**: one :class:`~deepmmsearch.agent.state.Episode` per trajectory (kept on veRL's
``AgentData``) enforces the budgets — image search once, the total tool calls, the turns — and
renders what goes back: the escaped ``<information>`` block with the follow-up instruction, or a
corrective observation; a failing backend is an observation too. The original image is
``agent_data.image_data[0]``; the counters are copied to ``agent_data.extra_fields``
(``dmm_tool_calls``, ``dmm_image_searches``, ...), which reach the reward function.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from uuid import uuid4

from verl.experimental.agent_loop.tool_parser import FunctionCall, ToolParser
from verl.tools.base_tool import BaseTool
from verl.tools.schemas import OpenAIFunctionToolSchema, ToolResponse

from deepmmsearch.agent.state import Episode
from deepmmsearch.train.verl.session import (
    IMAGE_TOOL,
    TEXT_TOOL,
    AgentRuntime,
    action_tag,
    counters,
    load_runtime,
    run_tool_turn,
    tool_action,
)

log = logging.getLogger(__name__)

PARSER_NAME = "deepmmsearch_tags"
_EPISODE_ATTR = "_deepmmsearch_episode"


@ToolParser.register(PARSER_NAME)
class TagToolParser(ToolParser):
    """``<text_search>`` / ``<img_search>`` tags → veRL function calls; see the module doc."""

    async def extract_tool_calls(self, responses_ids: list[int],
                                 tools: Any = None) -> tuple[str, list[FunctionCall]]:
        text = await asyncio.to_thread(self.tokenizer.decode, responses_ids,
                                       skip_special_tokens=True)
        action = tool_action(text)
        if action is None:
            return text, []
        if action.kind == "text_search":
            call = FunctionCall(name=TEXT_TOOL, arguments=json.dumps({"query": action.argument}))
        else:
            call = FunctionCall(name=IMAGE_TOOL,
                                arguments=json.dumps({"expression": action.argument}))
        return text, [call]


def _schema(name: str, description: str, arg: str, arg_doc: str) -> OpenAIFunctionToolSchema:
    return OpenAIFunctionToolSchema.model_validate({
        "type": "function",
        "function": {"name": name, "description": description,
                     "parameters": {"type": "object",
                                    "properties": {arg: {"type": "string", "description": arg_doc}},
                                    "required": [arg]}},
    })


class _SearchTool(BaseTool):
    """Shared by both tools: the agent config, the per-trajectory episode, the turn."""

    tool_name = ""
    argument = ""

    def __init__(self, config: dict, tool_schema: OpenAIFunctionToolSchema | None = None) -> None:
        path = config.get("agent_config")
        if not path:
            raise ValueError(f"{type(self).__name__}: the tool config needs 'agent_config' "
                             "(an agent-stage YAML, e.g. configs/verl/agent_fixture.yaml)")
        self.agent_config = str(path)
        self.overrides = [str(o) for o in config.get("overrides") or ()]
        super().__init__(config, tool_schema)
        if self.name != self.tool_name:
            raise ValueError(f"{type(self).__name__} must be named {self.tool_name!r} (the tag), "
                             f"got {self.name!r}")
        self._questions: dict[str, str] = {}

    @property
    def runtime(self) -> AgentRuntime:
        return load_runtime(self.agent_config, self.overrides)

    async def create(self, instance_id: str | None = None, **kwargs: Any) -> tuple[str, ToolResponse]:
        instance_id = instance_id or uuid4().hex
        create_kwargs = kwargs.get("create_kwargs") or {}
        self._questions[instance_id] = str(create_kwargs.get("question") or "")
        return instance_id, ToolResponse()

    async def release(self, instance_id: str, **kwargs: Any) -> None:
        self._questions.pop(instance_id, None)

    def episode(self, agent_data: Any, question: str) -> Episode:
        """The trajectory's episode (one per AgentData; a fresh one without AgentData)."""
        ep = getattr(agent_data, _EPISODE_ATTR, None) if agent_data is not None else None
        if ep is None:
            if not question:
                log.warning("%s: no question in tools_kwargs; follow-ups and summaries lack it",
                            self.name)
            ep = self.runtime.episode(question, episode_id=getattr(agent_data, "request_id", None),
                                      require_reason=False)
            if agent_data is not None:
                setattr(agent_data, _EPISODE_ATTR, ep)
        return ep

    async def execute(self, instance_id: str, parameters: dict[str, Any],
                      **kwargs: Any) -> tuple[ToolResponse, float, dict]:
        agent_data = kwargs.get("agent_data")
        ep = self.episode(agent_data, self._questions.get(instance_id, ""))
        value = parameters.get(self.argument) if isinstance(parameters, dict) else None
        tag = action_tag(self.tool_name, str(value).strip() if value is not None else "")
        images = getattr(agent_data, "image_data", None) or []
        before = ep.counters.tool_calls
        text = await run_tool_turn(self.runtime, ep, tag, images[0] if images else None)
        stats = counters(ep)
        if agent_data is not None:
            agent_data.extra_fields.update(stats)
        call = ep.turns[-1].tool_call if ep.turns and ep.counters.tool_calls > before else None
        metrics = {"ran": float(call is not None), "error": float(bool(call and call.error))}
        return ToolResponse(text=text), 0.0, metrics


class TextSearchTool(_SearchTool):
    """``text_search(query)``: web text search → summary, as an ``<information>`` block."""

    tool_name = TEXT_TOOL
    argument = "query"

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        return _schema(TEXT_TOOL, "Search the web with a text query; returns a summary.", "query",
                       "the search query")


class ImageSearchTool(_SearchTool):
    """``img_search(expression)``: reverse image search of the region the expression names
    (grounded and cropped), or of the whole image for ``<img>``; at most once per trajectory."""

    tool_name = IMAGE_TOOL
    argument = "expression"

    def get_openai_tool_schema(self) -> OpenAIFunctionToolSchema:
        return _schema(IMAGE_TOOL, "Reverse image search on a described region of the image, or "
                       "on the whole image with <img>; returns a summary.", "expression",
                       "a short description of the region, or <img> for the whole image")
