"""The agent: the pure episode state machine (state.py), tools glue (toolbox.py), async driver (loop.py)."""
