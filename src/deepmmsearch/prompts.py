"""Prompt sets, written in our own words, following the structure of the paper's appendix E.

Only the control strings (tags, ``<image>``, the give-up answer, verdict tokens) are the paper's.
Two sets ship:

- ``paper``: the full E.1 / E.3 / E.5 / E.6 / E.7 structure, for real models (7B and up).
- ``compact``: the same steps in a few words, for the tiny models trained from scratch on a CPU,
  whose context is short. Its structure (initial prompt, follow-ups, RAG, direct) is identical.

The ``version`` of a set is part of every cache key, so editing a prompt invalidates summaries.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepmmsearch.protocol import GIVE_UP, IMAGE_PLACEHOLDER


@dataclass(frozen=True)
class PromptSet:
    name: str
    version: str
    initial: str  # placeholders: {question}; must contain <image> before {question}
    after_image_search: str  # {question}
    after_text_search: str  # {question}
    budget_spent: str  # {what}
    invalid_action: str  # {error}
    rag_query: str  # {question} {information}
    rag_answer: str  # {question} {information}
    direct: str  # {question}
    summarize_text: str  # {original_question} {query} {references_text}
    summarize_image: str  # {original_question} {formatted_results}
    judge_eval: str  # {question} {references_for_prompt} {candidate}
    judge_reward: str  # {question} {references} {candidate}
    # {what}; appended after a search that did run, when a budget is now spent (budget_spent is
    # for a search that was refused)
    budget_note: str = "Budget: {what}. Answer now with what you have, inside <answer> </answer>."


_INITIAL_PAPER = f"""You are an expert visual assistant. Answer the question about the image below.

Step 1. Look closely at the image and read the question. Note the entities, objects, written text and any other visual clue that could matter.

Step 2. Think inside <reason> </reason>, then take exactly one of these actions:
1. Answer: if you can already recognise the visual entity and you know the facts the question asks for, write the final answer inside <answer> </answer>. For example, a famous landmark whose completion date you know.
2. Image search: if you cannot tell what the entity is, search with the image.
   - Cropped search (preferred when the question is about one particular entity such as a person, an animal, a plant, an object, a vehicle or a logo, or when the background does not matter): describe that entity briefly inside <img_search> </img_search>, e.g. <img_search>the face of the man on the left</img_search> or <img_search>the logo on the red cap</img_search>. The region you describe is located and only that crop is searched.
   - Whole-image search (only when the question concerns the whole scene, the place or the overall context): write exactly <img_search><img></img_search>. Never write <img></img>.
3. Text search: if you know what the entity is but lack the facts, write a search query inside <text_search> </text_search>.

Remember: search results come back in the next turn inside <information> </information>. You may search with the image only once; you may search with text several times.

{IMAGE_PLACEHOLDER}{{question}}"""

_AFTER_IMAGE_PAPER = """The <information> above summarises what the image search found about the visual entity. Study it together with the image and the question, and think inside <reason> </reason>. Then either give the final answer inside <answer> </answer>, or write a text search inside <text_search> </text_search> built from what the image search revealed; you may search with text again afterwards.
Question: {question}"""

_AFTER_TEXT_PAPER = f"""The <information> above holds the text search results. Compare them with what you already knew and work out what is still missing; think inside <reason> </reason>. Then do one of three things: give the final answer inside <answer> </answer>; search again with a sharper query inside <text_search> </text_search>; or, if you cannot find the answer, reply <answer>{GIVE_UP}</answer>.
Question: {{question}}"""

_RAG_QUERY_PAPER = f"""You are an expert visual assistant. The question below about the image needs knowledge from outside the image. A reverse image search has already been run on the image; its summary is:
<information>{{information}}</information>
Write the single best web text query for answering the question. Output only <text_search>your query</text_search>.

{IMAGE_PLACEHOLDER}{{question}}"""

_RAG_ANSWER_PAPER = f"""Here are the text search results for your query:
<information>{{information}}</information>
Explain your thinking inside <reason> </reason>, then give the final answer inside <answer> </answer>. If the information is not enough, reply <answer>{GIVE_UP}.</answer>
Question: {{question}}"""

_DIRECT_PAPER = f"""You are an expert visual assistant. Answer the question about the image from what you see and what you know; you cannot search. Think inside <reason> </reason>, then write the final answer inside <answer> </answer>.

{IMAGE_PLACEHOLDER}{{question}}"""

_SUMMARIZE_TEXT = """You will read web search results retrieved for a question. Write one concise summary of about ten sentences that keeps every fact useful for answering the question (names, dates, numbers, places), and say so when the results do not contain the answer.
Question: {original_question}
Query: {query}
Results:
{references_text}
Summary:"""

_SUMMARIZE_IMAGE = """Below are the titles and descriptions of web pages whose images look like the searched picture. In four to five sentences, describe what the picture most likely shows: the main entity and its name, objects, places, events, logos or text, using only what the results support.
Question about the picture: {original_question}
Results:
{formatted_results}
Summary:"""

_JUDGE_EVAL = """You are an impartial judge grading the answer to a visual question.
The reference field may list several acceptable answers separated by " | ". The candidate is correct when it means the same as at least one of them; extra explanation is fine, contradictions are not.
Question: {question}
References: {references_for_prompt}
Candidate: {candidate}
Reply with exactly [CORRECT] or [INCORRECT]."""

_JUDGE_REWARD = """You are a strict matcher of short answers. Decide whether the model answer matches any gold answer.
Rules: (1) synonyms, paraphrases and common aliases count as equal; (2) ignore articles, punctuation, word order and letter case; (3) matching one gold answer is enough; (4) numbers match when a predicted range contains the gold value, when the prediction is a reasonable rounding of it, or when it is the same quantity in another unit; (5) everything else is a mismatch, e.g. a misplaced decimal point or a range that misses the gold value.
Question: {question}
Gold answers: {references}
Model answer: {candidate}
Reply with two lines:
MATCH: true or MATCH: false
REASON: one short sentence"""

PAPER = PromptSet(
    name="paper",
    version="paper-1",
    initial=_INITIAL_PAPER,
    after_image_search=_AFTER_IMAGE_PAPER,
    after_text_search=_AFTER_TEXT_PAPER,
    budget_spent="That search was not run: {what}. Answer now with what you have, inside <answer> </answer>.",
    invalid_action="Your last turn could not be used ({error}). Write one <reason> </reason> followed by exactly one action tag.",
    rag_query=_RAG_QUERY_PAPER,
    rag_answer=_RAG_ANSWER_PAPER,
    direct=_DIRECT_PAPER,
    summarize_text=_SUMMARIZE_TEXT,
    summarize_image=_SUMMARIZE_IMAGE,
    judge_eval=_JUDGE_EVAL,
    judge_reward=_JUDGE_REWARD,
)

# The compact set keeps the same steps and control strings in very few tokens.
COMPACT = PromptSet(
    name="compact",
    version="compact-1",
    initial=f"{IMAGE_PLACEHOLDER}{{question}}",
    after_image_search="",
    after_text_search="",
    budget_spent="no more {what}; answer now",
    budget_note="{what}; answer now",
    invalid_action="invalid turn: {error}",
    rag_query=f"<information>{{information}}</information>{IMAGE_PLACEHOLDER}{{question}} query:",
    rag_answer="<information>{information}</information>answer:",
    direct=f"direct: {IMAGE_PLACEHOLDER}{{question}}",
    summarize_text=_SUMMARIZE_TEXT,
    summarize_image=_SUMMARIZE_IMAGE,
    judge_eval=_JUDGE_EVAL,
    judge_reward=_JUDGE_REWARD,
)

PROMPT_SETS = {p.name: p for p in (PAPER, COMPACT)}


def get_prompts(name: str) -> PromptSet:
    try:
        return PROMPT_SETS[name]
    except KeyError:
        from deepmmsearch.registry import did_you_mean

        raise ValueError(
            f"unknown prompt set {name!r}{did_you_mean(name, PROMPT_SETS)}; "
            f"choose from {sorted(PROMPT_SETS)}"
        ) from None
