"""Rewards: the judges (judge.py) and the GRPO reward R = (1 − λ)·s + λ·s_fmt (combine.py)."""
