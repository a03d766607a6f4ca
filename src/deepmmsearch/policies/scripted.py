"""``scripted``: replays model turns from a file — a first-class fake for tests and demos.

The file is JSON, YAML or JSONL. Either a mapping ``{episode_id_or_question: [turn, ...]}`` (the
key ``"*"`` applies to any episode), or JSONL rows ``{"id": ..., "turns": [...]}``. An episode
whose script runs out receives a turn that gives up (so a too-short script is visible in the
trajectory, not a hang).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from deepmmsearch.policies.base import Generation, GenerationRequest
from deepmmsearch.protocol import ANSWER, GIVE_UP, REASON, wrap
from deepmmsearch.registry import ConfigError


class ScriptedPolicy:
    name = "scripted"

    def __init__(self, path: str | None = None, turns: list[str] | None = None,
                 scripts: dict[str, list[str]] | None = None) -> None:
        self.scripts: dict[str, list[str]] = dict(scripts or {})
        if turns is not None:
            self.scripts["*"] = list(turns)
        if path is not None:
            self.scripts.update(_load(Path(path)))
        if not self.scripts:
            raise ConfigError("scripted policy: give 'path', 'turns' or 'scripts'")

    def script_for(self, request: GenerationRequest) -> list[str]:
        for key in (request.episode_id, request.metadata.get("id"), request.question, "*"):
            if key is not None and key in self.scripts:
                return self.scripts[key]
        return []

    async def generate(self, request: GenerationRequest) -> Generation:
        script = self.script_for(request)
        if request.turn_index < len(script):
            text = script[request.turn_index]
            return Generation(text, n_tokens=max(1, len(text) // 4), finish_reason="stop")
        text = wrap(REASON, "My script has no more turns.") + wrap(ANSWER, GIVE_UP)
        return Generation(text, n_tokens=len(text) // 4, finish_reason="script_exhausted")


def _load(path: Path) -> dict[str, list[str]]:
    if not path.exists():
        raise ConfigError(f"scripted policy: file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        out = {}
        for i, line in enumerate(text.splitlines()):
            if line.strip():
                row = json.loads(line)
                if "turns" not in row:
                    raise ConfigError(f"{path}:{i + 1}: a row needs 'turns'")
                out[str(row.get("id", row.get("question", "*")))] = list(row["turns"])
        return out
    data = yaml.safe_load(text)
    if isinstance(data, list):
        return {"*": [str(t) for t in data]}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of id -> turns")
    return {str(k): [str(t) for t in v] for k, v in data.items()}
