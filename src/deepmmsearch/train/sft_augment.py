"""Copy-span augmentation: each SFT example again with fresh names and numbers.

A model trained from scratch on a few thousand trajectories learns the names and numbers it sees
instead of learning to copy them out of ``<information>``: it reaches a low training loss and then
mangles unseen names ("Vudo" → "Vini") and permutes digits ("405" → "450") on held-out entities
(docs/LOG.md, Quickstart). Entity variety is what teaches copying (reference: speedrun.md, where
fresh entities took a 0.26M model from 69 % to 99 %). Drawing more entities costs pictures, pages
and distillation; renaming costs nothing: every copy of an example replaces the strings its tool
results bring — the capitalised words and the numbers of its ``tool`` messages — with fresh
strings of the same shape, consistently in every message of the example (the question that names
the entity, the queries, the information, the answer):

- a word: each letter by a random letter of its class (vowel or consonant, case kept), drawn from
  the letters such strings use in the data set, so ``Pibomar`` becomes, say, ``Tezulas``;
- a number: each digit by a random digit (a leading digit never 0); four-digit years
  (1800–2030) become other years in the same order, so "latest" stays the latest.

Words found in more than ``max_share`` of the examples (``In``, common first names) or also
written in lower case (``The``) are template or shared vocabulary, not facts, and are kept.
Examples whose tools brought nothing to rename are copied unchanged, so the search-free :
search-required mix the distillation chose is kept. The model still learns the behaviour from
the teacher's real trajectories; what changes is that no name or number can be memorised.

    sft:
      augment: {copies: 3}        # 4 examples for each distilled one

A tiny model's tokenizer is trained on the copies too (``tokenizer_on_copies: true``), or on the
distilled texts alone (``false``).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from deepmmsearch.registry import ConfigError
from deepmmsearch.train.sft_data import SFTExample
from deepmmsearch.types import Message

WORD = re.compile(r"\b[A-Z][a-z]+\b")
NUMBER = re.compile(r"\b\d+\b")
LOWER = re.compile(r"\b[a-z]+\b")
VOWELS = frozenset("aeiou")
YEARS = (1800, 2030)


@dataclass(frozen=True, kw_only=True)
class AugmentSpec:
    """Settings of the augmentation (a section of the SFT config)."""

    copies: int = 3  # renamed copies of every example (0: off)
    max_share: float = 0.01  # a word in more examples than this share (and than 3) is kept
    seed: int = 0
    # a tiny model's tokenizer: trained on the copies too (true) or on the distilled texts only
    tokenizer_on_copies: bool = True

    def __post_init__(self) -> None:
        if self.copies < 0:
            raise ConfigError("sft.augment.copies must be >= 0")
        if not 0.0 < self.max_share <= 1.0:
            raise ConfigError("sft.augment.max_share must lie in (0, 1]")


def _tool_strings(messages: Sequence[Message]) -> tuple[set[str], set[str]]:
    words: set[str] = set()
    numbers: set[str] = set()
    for m in messages:
        if m.role == "tool":
            words.update(WORD.findall(m.content))
            numbers.update(NUMBER.findall(m.content))
    return words, numbers


@dataclass(frozen=True)
class Renamer:
    """What to rename and with which letters (from :func:`fit_renamer`)."""

    keep: frozenset[str]  # shared words: never renamed
    vowels: str
    consonants: str

    def _word(self, word: str, rng: random.Random) -> str:
        out = []
        for ch in word:
            low = ch.lower()
            pool = self.vowels if low in VOWELS else self.consonants
            new = rng.choice(pool) if low.isalpha() else low
            out.append(new.upper() if ch.isupper() else new)
        return "".join(out)

    def mapping(self, messages: Sequence[Message], rng: random.Random) -> dict[str, str]:
        """Old string → fresh string for one copy of an example (words and numbers)."""
        words, numbers = _tool_strings(messages)
        out: dict[str, str] = {}
        taken = set(self.keep)
        for w in sorted(words - self.keep):
            for _ in range(20):  # a fresh word that collides with nothing in the example
                new = self._word(w, rng)
                if new not in taken and new not in words:
                    break
            out[w] = new
            taken.add(new)
        years = sorted(int(n) for n in numbers if len(n) == 4 and YEARS[0] <= int(n) <= YEARS[1])
        span = range(YEARS[0], YEARS[1] + 1)
        out.update({str(y): str(n) for y, n in zip(years, sorted(rng.sample(span, len(years))))})
        for n in sorted(numbers):
            if n not in out:
                digits = [str(rng.randint(1 if i == 0 and len(n) > 1 else 0, 9)) for i in range(len(n))]
                out[n] = "".join(digits)
        return out

    def apply(self, messages: Sequence[Message], mapping: dict[str, str]) -> list[Message]:
        def sub(text: str) -> str:
            text = WORD.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)
            return NUMBER.sub(lambda m: mapping.get(m.group(0), m.group(0)), text)

        return [Message(m.role, sub(m.content), m.images) for m in messages]


def fit_renamer(example_messages: Sequence[Sequence[Message]], max_share: float) -> Renamer:
    """Shared words (document frequency above ``max_share`` and 3, or also written in lower case)
    and the letters of the rest."""
    df: Counter[str] = Counter()
    lower: set[str] = set()
    for msgs in example_messages:
        df.update({w for m in msgs for w in WORD.findall(m.content)})
        lower.update(w for m in msgs for w in LOWER.findall(m.content))
    limit = max(3, max_share * len(example_messages))
    # shared: frequent, or also written in lower case ("The" / "the": a word, not a name)
    keep = frozenset(w for w, c in df.items() if c > limit or w.lower() in lower)
    letters = {ch.lower() for w in df if w not in keep for ch in w}
    vowels = "".join(sorted(letters & VOWELS)) or "aeiou"
    consonants = "".join(sorted(letters - VOWELS)) or "bdfgklmnprstvz"
    return Renamer(keep, vowels, consonants)


def augment_examples(examples: Sequence[SFTExample], spec: AugmentSpec) -> list[SFTExample]:
    """``examples`` followed by ``spec.copies`` renamed copies of each (ids ``ID~rK``;
    deterministic for ``spec.seed``)."""
    renamer = fit_renamer([ex.messages for ex in examples], spec.max_share)
    out = list(examples)
    for k in range(spec.copies):
        for i, ex in enumerate(examples):
            rng = random.Random(spec.seed * 1_000_003 + i * 131 + k)
            msgs = renamer.apply(ex.messages, renamer.mapping(ex.messages, rng))
            out.append(SFTExample(f"{ex.id}~r{k}", msgs, list(ex.images)))
    return out
