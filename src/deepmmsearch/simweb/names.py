"""Pronounceable generated names: entities, cities and people of the simulated web.

Names are built from a small inventory of consonant-vowel syllables, so a byte-level BPE of a few
hundred tokens trained on the world's text keeps them as shared syllable pieces and a tiny model can
copy an unseen name piece by piece (``docs/`` and the speedrun study: entity diversity matters).

>>> import random
>>> gen = NameGenerator(random.Random(0))
>>> name = gen.entity()
>>> name.isalpha() and name[0].isupper()
True
>>> gen.entity() != name
True
"""

from __future__ import annotations

import random

ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z")
VOWELS = ("a", "e", "i", "o", "u")
# the syllable inventory: 70 consonant-vowel pairs
SYLLABLES = tuple(c + v for c in ONSETS for v in VOWELS)
CITY_ENDINGS = ("vik", "dor", "mar", "ston", "berg", "holm", "ford", "lan")
FIRST_NAMES = (
    "Ana",
    "Bela",
    "Dario",
    "Elin",
    "Filo",
    "Greta",
    "Hugo",
    "Ines",
    "Jona",
    "Karin",
    "Lotta",
    "Marek",
    "Nadia",
    "Otto",
    "Pavel",
    "Rosa",
    "Sami",
    "Tomas",
    "Una",
    "Vera",
    "Wim",
    "Yara",
    "Zeno",
    "Ida",
    "Leon",
    "Mira",
    "Nils",
    "Olga",
    "Petra",
    "Rui",
)


class NameGenerator:
    """Draws names that never repeat within one world (entity names, city names, surnames)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set(FIRST_NAMES)  # "Rosa" is a first name, never an entity
        self.surnames: set[str] = set()  # people's surnames: never an entity's or a city's name

    def _fresh(self, make) -> str:
        for _ in range(10_000):
            name = make()
            if name not in self.used and name not in self.surnames:
                self.used.add(name)
                return name
        raise RuntimeError("ran out of names; lower the number of entities")

    def _syllables(self, n: int) -> str:
        return "".join(self.rng.choice(SYLLABLES) for _ in range(n)).capitalize()

    def entity(self) -> str:
        """Two or three syllables (e.g. ``Kelu``, ``Kelumo``): no English words; short names are
        fewer pieces to copy (docs/LOG.md, Quickstart: 23 → 45 % for the tiny agent)."""
        return self._fresh(lambda: self._syllables(self.rng.choice((2, 3))))

    def city(self) -> str:
        """Two syllables and a city ending (e.g. ``Bravik``)."""
        return self._fresh(lambda: self._syllables(2) + self.rng.choice(CITY_ENDINGS))

    def person(self) -> str:
        """A first name and a two-syllable surname (e.g. ``Ana Kole``). The full name is unique; a
        surname may recur with another first name but is never an entity's or a city's name (the
        70 × 70 two-syllable surnames alone would run out at ≈ 5,000 people)."""

        def draw() -> str:
            surname = self._syllables(2)
            while surname in self.used:
                surname = self._syllables(2)
            return f"{self.rng.choice(FIRST_NAMES)} {surname}"

        name = self._fresh(draw)
        self.surnames.add(name.split(" ", 1)[1])
        return name
