"""``simweb-expert``: SimWeb's privileged teacher policy.

It knows the world (which entity a question is about, its facts, the scene's annotations) but it
only *chooses actions*: the episode engine and the real tools (BM25 text search, the local image
index, the ``simweb`` grounder, the summariser) run them, so its trajectories are real tool calls.
It reads the ``<information>`` it is given to decide the next step, like a model would:

- search-free question: a direct answer ("I can see that the bird on the left is red.");
- a specific entity in a cluttered scene: crop image search with the question's referring
  expression; a single-entity photo: whole-image search;
- the entity it takes from the image search is the *first* entity name in that information (what
  a reasonable agent would do; when the search got the wrong entity the teacher goes wrong too,
  and the distillation filters drop the trajectory);
- text search ``NAME WORD`` (``NAME latest WORD`` for time-sensitive questions), refined with other
  wordings while the information does not state the fact, then the answer — or the give-up answer;
- two-hop questions ("In which city was the designer of the blue car born?"): once the
  information names the person (the designer), a second, refined text search ``PERSON WORD``
  for the person's fact, then the answer. With one text search allowed, it cannot get there.

Noise (probabilities, drawn per question from ``seed``, so reruns are identical) gives the
distillation filters something to remove: ``p_wrong_query`` (the first text query carries a
mangled name — a tiny model's typical slip — and the teacher then retries with the right one),
``p_unneeded_search`` (an image search before a search-free answer, or an extra text search after
the fact was found) and ``p_wrong_answer`` (a stale or another entity's value).

``p_answer_known`` makes it a teacher with world knowledge, like a strong real MLLM: a question
about a *training* entity (what the teacher has "read") is answered from memory, with no search,
with this probability. Its answers are right, so the filters keep them, and a student that imitates
them sometimes skips a search it needs on an entity it never saw — what GRPO can then unlearn
(the paper's RL learns when to search).
Works with both prompt sets: it only reads tool messages and writes our tag grammar.

    policy: {name: simweb-expert, world: runs/simweb, p_wrong_query: 0.1}
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path

from deepmmsearch.policies.base import Generation, GenerationRequest
from deepmmsearch.prompts import PAPER, PromptSet
from deepmmsearch.protocol import GIVE_UP, extract_information, parse_action, render_action
from deepmmsearch.simweb.facts import answer_aliases, attribute, format_value, person_fact
from deepmmsearch.simweb.world import Entity, Question, World
from deepmmsearch.types import Action, Message

_NAME = re.compile(r"[A-Z][a-z]+")


@dataclass(frozen=True)
class Noise:
    wrong_query: bool = False
    unneeded_search: bool = False
    wrong_answer: bool = False
    answer_known: bool = False


@dataclass
class _History:
    """What happened so far, read back from the messages."""

    actions: list[Action]
    infos: list[str | None]  # the information after each action (None: no tool message yet)
    denied: list[bool]  # the engine refused the search (a budget) instead of running it

    @property
    def image_info(self) -> str | None:
        for a, info, no in zip(self.actions, self.infos, self.denied):
            if a.kind == "image_search" and not no:
                return info
        return None

    @property
    def did_image_search(self) -> bool:
        return any(a.kind == "image_search" for a in self.actions)

    @property
    def text_queries(self) -> list[str]:
        return [a.argument for a in self.actions if a.kind == "text_search"]


def _mentions(info: str, entity: Entity | str, values: list[str]) -> bool:
    """Does one line (or sentence) of ``info`` state one of ``values`` for ``entity`` (an entity
    or a person's name)?"""
    name = entity if isinstance(entity, str) else entity.name
    for line in re.split(r"\n|(?<=\.)\s", info):
        if name in line and any(
            re.search(rf"(?<![\w,]){re.escape(v)}(?!\w|,\d)", line) for v in values
        ):
            return True
    return False


class ExpertPolicy:
    """See the module docstring. ``world``: a built world's directory (or a loaded World)."""

    name = "simweb-expert"

    def __init__(
        self,
        world: str | Path | World,
        prompts: PromptSet | None = None,
        seed: int = 0,
        p_wrong_query: float = 0.0,
        p_unneeded_search: float = 0.0,
        p_wrong_answer: float = 0.0,
        p_answer_known: float = 0.0,
        max_text_searches: int = 3,
    ) -> None:
        self.world = world if isinstance(world, World) else World.load(world)
        self.prompts = prompts or PAPER
        self.seed = seed
        self.p = (p_wrong_query, p_unneeded_search, p_wrong_answer, p_answer_known)
        for p in self.p:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"noise probabilities must lie in [0, 1], got {p}")
        self.max_text_searches = max(1, max_text_searches)
        head = self.prompts.budget_spent.split("{what}")[0]
        self._denied = re.compile(re.escape(head)) if head.strip() else None

    # -- looking things up --------------------------------------------------------------------

    def question_for(self, request: GenerationRequest) -> Question | None:
        md = request.metadata or {}
        for key in ("id", "question_id"):
            q = self.world.questions.get(str(md.get(key)))
            if q is not None:
                return q
        return self.world.find_question(request.question, request.image)

    def noise(self, q: Question) -> Noise:
        rng = random.Random(f"expert:{self.seed}:{q.id}")
        draws = [rng.random() < p for p in self.p]
        return Noise(*draws)

    def first_entity(self, info: str | None) -> Entity | None:
        for word in _NAME.findall(info or ""):
            e = self.world.entity_by_name.get(word)
            if e is not None:
                return e
        return None

    def history(self, messages: list[Message]) -> _History:
        actions: list[Action] = []
        infos: list[str | None] = []
        denied: list[bool] = []
        for m in messages:
            if m.role == "assistant":
                actions.append(parse_action(m.content))
                infos.append(None)
                denied.append(False)
            elif m.role == "tool" and actions:
                blocks = extract_information(m.content)
                infos[-1] = "\n".join(blocks)
                denied[-1] = bool(self._denied and blocks and self._denied.match(blocks[0]))
        return _History(actions, infos, denied)

    # -- the policy ---------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> Generation:
        q = self.question_for(request)
        if q is None:
            action = Action(
                "answer", GIVE_UP, reason="This question is not part of the SimWeb world."
            )
        else:
            action = self.decide_messages(q, request.messages)
        text = render_action(action)
        return Generation(text, n_tokens=max(1, len(text) // 4), finish_reason="stop")

    def rag_information(self, messages: list[Message]) -> str | None:
        """The image-search summary of a RAG prompt (``prompts.rag_query``, E.3), else None."""
        head = self.prompts.rag_query.split("{information}")[0]
        first = next((m for m in messages if m.role == "user"), None)
        if first is None or not head.strip() or not first.content.startswith(head):
            return None
        return "\n".join(extract_information(first.content))

    def decide_messages(self, q: Question, messages: list[Message]) -> Action:
        """The next action. In the RAG workflow the fixed whole-image search is read from the
        prompt as if the teacher had run it, and the second (last) turn must answer."""
        h = self.history(messages)
        info = self.rag_information(messages)
        if info is None:
            return self.decide(q, h)
        whole = Action("image_search", "<img>", whole_image=True)
        h = _History([whole, *h.actions], [info, *h.infos], [False, *h.denied])
        action = self.decide(q, h)
        if len(h.actions) > 1 and action.kind != "answer":
            return Action("answer", GIVE_UP, reason="The search results do not give the answer.")
        return action

    def decide(self, q: Question, h: _History) -> Action:
        target = self.world.entities[q.entity]
        noise = self.noise(q)
        if q.search == "none":
            return self._search_free(q, target, h, noise)
        if noise.answer_known and target.split == "train" and not h.actions:
            known = self._known_answer(q, target)
            if known is not None:
                return Action("answer", known, reason="I already know this from memory.")
        if q.search in ("crop", "whole") and not h.did_image_search:
            return self._image_search(q, target)
        if (
            q.search == "text"
            and noise.unneeded_search
            and not h.did_image_search
            and not h.actions
        ):
            return Action(
                "image_search",
                "<img>",
                reason="I will search with the image first.",
                whole_image=True,
            )
        if q.search == "text":
            known = target
        else:
            known = self.first_entity(h.image_info)
            if known is None:
                return Action(
                    "answer", GIVE_UP, reason=f"The image search did not identify {q.expression}."
                )
        return self._text_phase(q, known, h, noise)

    def _search_free(self, q: Question, target: Entity, h: _History, noise: Noise) -> Action:
        if noise.unneeded_search and not h.actions:
            return self._image_search(q, target)
        return Action(
            "answer", target.colour, reason=f"I can see that {q.expression} is {target.colour}."
        )

    def _image_search(self, q: Question, target: Entity) -> Action:
        if q.search == "whole" or not q.expression:
            return Action(
                "image_search",
                "<img>",
                whole_image=True,
                reason=f"I need to identify this {target.noun} first.",
            )
        return Action(
            "image_search", q.expression, reason=f"I need to identify {q.expression} first."
        )

    def _queries(self, q: Question, e: Entity, word: str) -> list[str]:
        if q.type == "time-sensitive":
            return [
                f"{e.name} latest {word}",
                f"latest {word} of {e.page_noun} {e.name}",
                f"{e.name} {word}",
            ]
        return [f"{e.name} {word}", f"{word} of {e.page_noun} {e.name}", f"{e.name} {e.page_noun}"]

    def _text_phase(self, q: Question, e: Entity, h: _History, noise: Noise) -> Action:
        """Text search for the fact of ``e`` (the entity the agent believes it is) and answer."""
        category = q.category or self.world.entities[q.entity].category
        attr = attribute(category, q.attribute)
        value = e.value(attr.key) if e.category == category else None  # None: it cannot be found
        queries = self._queries(q, e, attr.word)
        done = h.text_queries
        seen = "\n".join(i for a, i in zip(h.actions, h.infos) if a.kind == "text_search" and i)
        give_up = Action(
            "answer", GIVE_UP, reason=f"The searches did not give the {attr.word} of {e.name}."
        )
        if value is not None and _mentions(seen, e, answer_aliases(attr, value)):
            if q.type == "two-hop" and q.hop:
                return self._second_hop(q, e, value, h, noise)
            if noise.unneeded_search and f"{e.name} {e.page_noun}" not in done:
                return Action(
                    "text_search",
                    f"{e.name} {e.page_noun}",
                    reason=f"I will check more about {e.name}.",
                )
            answer = self._wrong_value(q, e) if noise.wrong_answer else format_value(attr, value)
            return Action(
                "answer", answer, reason=f"The information gives the {attr.word} of {e.name}."
            )
        if not done:
            if noise.wrong_query:
                return Action(
                    "text_search",
                    f"{self._mangle(e.name, q)} {attr.word}",
                    reason=f"I need the {attr.word} of this {e.page_noun}.",
                )
            first = "The question names" if q.search == "text" else "The image search shows"
            return Action(
                "text_search", queries[0], reason=f"{first} {e.name}. I need its {attr.word}."
            )
        if len(done) >= self.max_text_searches or h.denied[-1]:
            return give_up
        nxt = next((x for x in queries if x not in done), None)
        if nxt is None:
            return give_up
        return Action(
            "text_search",
            nxt,
            reason=f"That missed the {attr.word} of {e.name}. I will refine the query.",
        )

    def _known_answer(self, q: Question, e: Entity) -> str | None:
        """The gold answer as the teacher remembers it (None: it does not know the person)."""
        if q.type == "two-hop":
            return self.world.person_fact(e, q.attribute or "", q.hop or "")
        return format_value(e.attr(q.attribute or ""), e.value(q.attribute or ""))

    def _second_hop(self, q: Question, e: Entity, person: str, h: _History, noise: Noise) -> Action:
        """Two-hop: the information named ``person`` (e's designer, ...); search their fact."""
        fact = person_fact(q.hop or "")
        p = self.world.people.get(person)
        first = attribute(e.category, q.attribute or "").word
        give_up = Action(
            "answer", GIVE_UP, reason=f"The searches did not give the {fact.word} of {person}."
        )
        if p is None:
            return give_up
        value = p.facts[fact.key]
        done = h.text_queries
        seen = "\n".join(
            i for a, i in zip(h.actions, h.infos) if a.kind == "text_search" and i and person in i
        )
        if _mentions(seen, person, [value]) and any(person in x for x in done):
            answer = value
            if noise.wrong_answer:
                others = [o.facts[fact.key] for o in self.world.people.values()]
                rng = random.Random(f"expert-wrong:{self.seed}:{q.id}")
                answer = next((v for v in rng.sample(others, min(20, len(others))) if v != value),
                              GIVE_UP)
            return Action("answer", answer, reason=f"The information gives the {fact.word} of {person}.")
        queries = [f"{person} {fact.word}", f"{fact.word} of {person}", person]
        nxt = next((x for x in queries if x not in done), None)
        if nxt is None or len(done) >= self.max_text_searches or h.denied[-1]:
            return give_up
        if nxt == queries[0]:
            reason = f"{person} is the {first}. I need their {fact.word}."
        else:
            reason = f"That missed the {fact.word}. I will refine the query."
        return Action("text_search", nxt, reason=reason)

    def _mangle(self, name: str, q: Question) -> str:
        """The name with one vowel changed or its last syllable dropped (never the name itself)."""
        rng = random.Random(f"expert-mangle:{self.seed}:{q.id}")
        if rng.random() < 0.3 and len(name) > 4:
            return name[:-2]
        spots = [i for i, ch in enumerate(name) if ch in "aeiou"]
        i = rng.choice(spots)
        return name[:i] + rng.choice([v for v in "aeiou" if v != name[i]]) + name[i + 1 :]

    def _wrong_value(self, q: Question, e: Entity) -> str:
        """A clearly wrong value: a stale version, else another entity's (numbers off by > 10%)."""
        attr = e.attr(q.attribute)
        true = e.value(attr.key)
        cands = [str(v) for _, v in e.dated.get(attr.key, [])[:-1]]
        rng = random.Random(f"expert-wrong:{self.seed}:{q.id}")
        same = self.world.by_category[e.category]
        cands += [same[rng.randrange(len(same))].value(attr.key) for _ in range(20)]
        for v in cands:
            if attr.kind == "number":
                if abs(int(v) - int(true)) > 0.1 * abs(int(true)):
                    return format_value(attr, v)
            elif attr.kind == "year":
                if v != true:
                    return format_value(attr, v)
            elif v.split()[-1] != true.split()[-1]:
                return format_value(attr, v)
        return GIVE_UP
