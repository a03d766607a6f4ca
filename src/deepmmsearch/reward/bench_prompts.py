"""Grader prompts of two benchmarks whose official score is an LLM's verdict, in our own words,
following the structure of the published graders, and the parsers of their replies.

- ``browsecomp`` (BrowseComp-VL, after BrowseComp's grader as used by WebWatcher): the grader
  reads the question, the response and the correct answer, and replies with four labelled lines —
  the final answer it extracted, its reasoning, ``correct: yes|no`` and a confidence;
- ``mmvet`` (MM-Vet's grader): a few worked examples of question / ground truth / prediction /
  score, where ``<AND>`` in a ground truth means every part is needed and ``<OR>`` that any one
  is enough; the grader replies with one score between 0.0 and 1.0.
"""

from __future__ import annotations

import re

BROWSECOMP_GRADER = """Grade a response to a question against its correct answer.

[question]: {question}

[response]: {candidate}

[correct_answer]: {references}

Reply in exactly this format:

extracted_final_answer: the final answer stated in the response, copied as written, or None if it states none.

reasoning: explain only whether extracted_final_answer and correct_answer agree. Do not solve the question yourself and do not argue for another answer. Small differences of wording, or a numeric answer within a small margin of the correct one, still agree; anything ambiguous, different or missing does not.

correct: yes if extracted_final_answer agrees with correct_answer, otherwise no.

confidence: a percentage from 0% to 100%, the confidence the response itself gives (100% if it gives none)."""

MMVET_GRADER = """Compare the ground truth with the prediction and give the prediction a correctness score between 0.0 and 1.0 (0.0 wrong, 1.0 fully right; partly right in between). In a ground truth, <AND> joins parts that must all be present, and <OR> joins alternatives of which one is enough.

Question | Ground truth | Prediction | Correctness
--- | --- | --- | ---
What colour is the car? | red | The car is red. | 1.0
What colour is the car? | red | The car is blue. | 0.0
Which two fruits are on the plate? | apple <AND> pear | There is an apple. | 0.5
Which two fruits are on the plate? | apple <AND> pear | An apple and a pear. | 1.0
What is the sign's shape? | octagon <OR> eight-sided | It has eight sides. | 1.0
How many people are in the photo? | 4 | About four or five. | 0.4
{question} | {references} | {candidate} |

Reply with the score only."""

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def parse_browsecomp_reply(text: str) -> tuple[bool | None, str]:
    """``correct: yes|no`` (exactly one distinct value) and the reasoning line."""
    t = _THINK.sub(" ", text or "")
    values = {v.lower() == "yes" for v in
              re.findall(r"^\W*correct\W*[:：]\s*\**\s*(yes|no)\b", t, re.IGNORECASE | re.MULTILINE)}
    m = re.search(r"^\W*reasoning\W*[:：]\s*(.+)", t, re.IGNORECASE | re.MULTILINE)
    return (values.pop() if len(values) == 1 else None), (m.group(1).strip() if m else "")


def parse_mmvet_reply(text: str) -> float | None:
    """The first number in the reply, when it lies in [0, 1]."""
    t = _THINK.sub(" ", text or "")
    m = re.search(r"(?<![\d.])(0(?:\.\d+)?|1(?:\.0+)?)(?![\d.])", t)
    return float(m.group(1)) if m else None
