"""``simweb-prior``: a direct-answer baseline that never searches and never looks at the image.

It has memorised the training split: every fact of every entity named in a training question and
the most frequent training answer of each question template. Given a question it recognises the
template, answers with the memorised fact when the question names a training entity, and
otherwise with the template's most frequent training answer. On held-out entities this is what
answering without search amounts to; SimWeb's value ranges are wide so it should score near zero
on search-required test questions (``tests/simweb`` checks at most 10%).

    policy: {name: simweb-prior, world: runs/simweb}
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from deepmmsearch.policies.base import Generation, GenerationRequest
from deepmmsearch.protocol import GIVE_UP, render_action
from deepmmsearch.simweb.facts import ATTRIBUTES, PERSON_FACTS, format_value, person_attribute
from deepmmsearch.simweb.world import World
from deepmmsearch.types import Action

_COLOUR_Q = re.compile(r"^What colour is (?P<x>.+)\?$")
_NAMED = re.compile(r"^the (?:bird|building|car|plant|brand) (?P<name>[A-Z][a-z]+)$")


def _templates() -> list[tuple[re.Pattern, str, str]]:
    """(pattern, category, attribute key) for every question template; two-hop templates have
    the key ``ATTR>FACT`` (the person attribute, then the person's fact)."""
    out = []
    for cat in ATTRIBUTES:
        a = person_attribute(cat)
        for f in PERSON_FACTS:
            head, _, tail = f.question.partition("{x}")
            head += f"the {a.word} of "
            out.append((re.compile("^" + re.escape(head) + "(?P<x>.+)" + re.escape(tail) + "$"),
                        cat, f"{a.key}>{f.key}"))
    for cat, attrs in ATTRIBUTES.items():
        for a in attrs:
            head, _, tail = a.question.partition("{x}")
            out.append(
                (
                    re.compile("^" + re.escape(head) + "(?P<x>.+)" + re.escape(tail) + "$"),
                    cat,
                    a.key,
                )
            )
    return out


class PriorPolicy:
    name = "simweb-prior"

    def __init__(self, world: str | Path | World, split: str = "train") -> None:
        self.world = world if isinstance(world, World) else World.load(world)
        self.templates = _templates()
        train = [q for q in self.world.questions.values() if q.split == split]
        seen = {q.entity for q in train}
        self.memory = {e.name: e for e in self.world.entities.values() if e.id in seen}
        counts: dict[str, Counter] = {}
        for q in train:
            counts.setdefault(self._template_key(q.question), Counter())[q.answers[0]] += 1
        self.majority = {k: c.most_common(1)[0][0] for k, c in counts.items()}

    def _template_key(self, question: str) -> str:
        if _COLOUR_Q.match(question):
            return "colour"
        for pattern, _, key in self.templates:
            if pattern.match(question):
                return f"{pattern.pattern}|{key}"
        return "?"

    def answer(self, question: str) -> str:
        for pattern, cat, key in self.templates:
            m = pattern.match(question)
            named = _NAMED.match(m.group("x")) if m else None
            e = self.memory.get(named.group("name")) if named else None
            if e is not None and e.category == cat:
                if ">" in key:
                    return self.world.person_fact(e, *key.split(">")) or GIVE_UP
                return format_value(e.attr(key), e.value(key))
        return self.majority.get(self._template_key(question), GIVE_UP)

    async def generate(self, request: GenerationRequest) -> Generation:
        text = render_action(
            Action("answer", self.answer(request.question), reason="I answer from what I remember.")
        )
        return Generation(text, n_tokens=max(1, len(text) // 4), finish_reason="stop")
