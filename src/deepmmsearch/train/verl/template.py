"""Chat templates for the two veRL agent loops (pure strings; no veRL import).

- ``deepmmsearch_agent`` (our loop, the default) uses **our** template,
  :data:`deepmmsearch.conversation.template.CHAT_TEMPLATE`: injected ``<information>`` text stays
  inline in the assistant turn, so RL tokens and masks are those of SFT, token for token.
- ``tool_agent`` (veRL's stock loop) always opens a new turn for a tool message: it tokenises a
  tool turn as the difference between two template renders. :data:`TOOL_TURN_TEMPLATE` renders a
  tool message as a **user** turn holding the ``<information>`` block (never a ``tool`` role
  header, never the tool schemas)::

      <|im_start|>assistant
      <reason>…</reason><text_search>…</text_search><|im_end|>
      <|im_start|>user
      <information>…</information>
      …follow-up instruction…<|im_end|>
      <|im_start|>assistant
      <reason>…</reason><answer>…</answer><|im_end|>

  A model SFT'd with our inline layout never learned to close an action turn with
  ``<|im_end|>``; this path suits models trained with the new-turn layout (docs/DECISIONS.md).

Set with ``actor_rollout_ref.model.custom_chat_template`` (``runs/verl_multinode.sh`` does).
"""

from __future__ import annotations

from deepmmsearch.conversation.template import CHAT_TEMPLATE, JINJA_MESSAGE_BODY

# The message body (string content with <image> placeholders, or HF parts) is rendered by the
# Jinja of CHAT_TEMPLATE: only the turn layout differs.
TOOL_TURN_TEMPLATE = (
    "{%- for m in messages -%}"
    + JINJA_MESSAGE_BODY
    + "{%- if m.role == 'assistant' -%}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ body }}{% endgeneration %}"
    "{{ '<|im_end|>\\n' }}"
    "{%- elif m.role == 'tool' -%}"
    "{{ '<|im_start|>user\\n' + body + '<|im_end|>\\n' }}"
    "{%- else -%}"
    "{{ '<|im_start|>' + m.role + '\\n' + body + '<|im_end|>\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# What the role headers of TOOL_TURN_TEMPLATE look like in a response decoded without special
# tokens (veRL's reward input): "<|im_end|>\n<|im_start|>user\n" becomes "\nuser\n".
DECODED_TOOL_OPEN = "\nuser\n"
DECODED_ASSISTANT_OPEN = "\nassistant\n"

TEMPLATES = {"deepmmsearch_agent": CHAT_TEMPLATE, "tool_agent": TOOL_TURN_TEMPLATE}


def chat_template_for(agent_loop: str) -> str:
    """The template a loop needs (``deepmmsearch_agent`` or ``tool_agent``)."""
    try:
        return TEMPLATES[agent_loop]
    except KeyError:
        raise ValueError(f"no chat template for agent loop {agent_loop!r}; "
                         f"one of {sorted(TEMPLATES)}") from None


def main(argv: list[str] | None = None) -> int:
    """Print a loop's template: ``python -m deepmmsearch.train.verl.template deepmmsearch_agent``."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(chat_template_for(args[0] if args else "deepmmsearch_agent"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
