"""The conversation core: what inference, SFT, GRPO, eval and the veRL adapters share.

- :mod:`.messages` — the one ``messages()`` (prompt + model turns + injections) and the one
  text a tool call contributes to an ``<information>`` block;
- :mod:`.template` — the chat template (segments, and the same template in Jinja);
- :mod:`.encoding` — segment-by-segment token ids with the loss / env mask;
- :mod:`.families` — the model-family table, chosen by a checkpoint's ``model_type``.

Pure: no torch, no tokenizer download; nothing here imports ``deepmmsearch.train``.
"""
