"""veRL adapters for the paper-scale GRPO run (many nodes): thin edges over the core.

Nothing here is imported by ``import deepmmsearch`` or by the core; veRL (0.9.1, pinned) lives in
its own environment (``make test-verl`` builds ``.venv-verl``; DESIGN.md §4). The pieces:

- :mod:`.agent_loop` — ``deepmmsearch_agent``, veRL's agent loop driven by our episode state
  machine, with the SFT chat template's inline ``<information>`` layout (the default);
- :mod:`.tools` — ``TextSearchTool`` / ``ImageSearchTool`` (``BaseTool``) around our backends, and
  the tag parser ``deepmmsearch_tags`` for veRL's stock ``tool_agent`` loop;
- :mod:`.template` — the chat template each loop needs (``custom_chat_template``);
- :mod:`.reward` — ``compute_score``: 0.9·judge + 0.1·format (no veRL import);
- :mod:`.dataset` — ``DeepMMSearchRLDataset`` (images without ``qwen_vl_utils``);
- :mod:`.session` — the shared, veRL-free part (agent config, toolbox, parser rule, token cut).

Data: ``deepmmsearch data export fvqa path=fvqa_train.parquet --format verl --out train.parquet``.
Launch: ``runs/verl_multinode.sh`` (``--dry-run`` prints the resolved Hydra config).
"""
