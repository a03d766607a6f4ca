"""Helpers for the agent-runtime tests: local tools (fixture backends, extractive summariser)."""

from __future__ import annotations

from deepmmsearch.agent.toolbox import Toolbox
from deepmmsearch.tools.grounding.basic import FixedGrounder
from deepmmsearch.tools.image.fixture import FixtureImageSearch
from deepmmsearch.tools.summarize import ExtractiveSummarizer
from deepmmsearch.tools.text.fixture import FixtureTextSearch

R = "<reason>thinking</reason>"
TEXT = R + "<text_search>great egret wingspan</text_search>"
CROP = R + "<img_search>the white bird</img_search>"
WHOLE = R + "<img_search><img></img_search>"
ANSWER = R + "<answer>131 to 170 cm</answer>"
BAD = "no tags here"

TEXT_HITS = {
    "great egret wingspan": [
        {"title": "Great egret", "url": "https://example.org/great-egret",
         "snippet": "The great egret is a large heron. Its wingspan is 131 to 170 cm. It lives near water."},
        {"title": "Herons", "url": "https://example.org/herons", "snippet": "Herons are wading birds."},
    ],
    "great egret habitat": [
        {"title": "Egret habitats", "url": "https://example.org/habitat",
         "snippet": "Great egrets live in marshes and near lakes. They nest in trees."},
    ],
    "*": [{"title": "Anything", "url": "https://example.org/any", "snippet": "Some page."}],
}
IMAGE_HITS = {
    "*": [{"title": "Great egret in flight", "url": "https://example.org/img/egret",
           "snippet": "A great egret flying over a lake."}],
}


def make_toolbox(**overrides) -> Toolbox:
    kw = {
        "text_search": FixtureTextSearch(responses=TEXT_HITS),
        "image_search": FixtureImageSearch(responses=IMAGE_HITS),
        "grounder": FixedGrounder(box=[20, 20, 90, 80]),
        "summarizer": ExtractiveSummarizer(),
        "prompt_version": "test",
    }
    kw.update(overrides)
    return Toolbox(**kw)
