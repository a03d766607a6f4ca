"""Build a ready-to-run agent (policy + toolbox + episode factory) from an AgentConfig."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepmmsearch.agent.state import Episode
from deepmmsearch.agent.toolbox import Toolbox
from deepmmsearch.config import AgentConfig
from deepmmsearch.prompts import PromptSet, get_prompts
from deepmmsearch.registry import POLICY
from deepmmsearch.roles import Policy


@dataclass
class Agent:
    config: AgentConfig
    policy: Policy
    toolbox: Toolbox
    prompts: PromptSet

    def episode(self, question: str, image: str | None = None, **kwargs: Any) -> Episode:
        return Episode(question, image, limits=self.config.limits, prompts=self.prompts, **kwargs)


def build_agent(cfg: AgentConfig, *, policy: Policy | None = None, **context: Any) -> Agent:
    prompts = get_prompts(cfg.prompts)
    pol = policy if policy is not None else POLICY.build(cfg.policy, prompts=prompts, **context)
    toolbox = Toolbox.from_config(cfg, policy=pol, **context)
    return Agent(cfg, pol, toolbox, prompts)
