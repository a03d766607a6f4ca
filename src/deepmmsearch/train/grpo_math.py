"""An independent, framework-free reference of the GRPO objective (paper §3.2).

Used by the tests to check what the trainer optimises, on fixed tensors:

- group advantages ``A_i = r_i − mean(r_group)`` (the paper: no division by the std;
  ``scale="group"`` divides by the group std + eps, as TRL/veRL do by default);
- per-token ratio ``ρ = exp(logπ − logπ_old)``, clipped surrogate ``min(ρA, clip(ρ, 1−ε, 1+ε)A)``;
- KL to the frozen reference, the k3 estimator ``exp(ref − logπ) − (ref − logπ) − 1``;
- loss per sequence = mean over its trained tokens (mask 1: model tokens; injected
  ``<information>`` tokens are 0) of ``−surrogate + β·KL``, then the mean over sequences
  (TRL's ``loss_type="grpo"``).
"""

from __future__ import annotations

from typing import Literal

import torch


def group_advantages(
    rewards: torch.Tensor, group_size: int, scale: Literal["none", "group", "batch"] = "none",
    eps: float = 1e-4,
) -> torch.Tensor:
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    grouped = rewards.view(-1, group_size)
    adv = (grouped - grouped.mean(dim=1, keepdim=True)).reshape(-1)
    if scale == "group":
        std = grouped.std(dim=1, unbiased=True).repeat_interleave(group_size)
        adv = adv / (std + eps)
    elif scale == "batch":
        adv = adv / (rewards.std(unbiased=True) + eps)
    return adv


def grpo_loss(
    logps: torch.Tensor,  # (B, T) log-probs of the sampled tokens under the current policy
    old_logps: torch.Tensor,  # (B, T) under the policy that sampled them
    ref_logps: torch.Tensor | None,  # (B, T) under the frozen reference, or None (β = 0)
    advantages: torch.Tensor,  # (B,)
    mask: torch.Tensor,  # (B, T) 1 = trained token
    *,
    epsilon: float = 0.2,
    beta: float = 0.001,
) -> tuple[torch.Tensor, dict[str, float]]:
    mask = mask.to(logps.dtype)
    ratio = torch.exp(logps - old_logps)
    adv = advantages.unsqueeze(1)
    surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 1 - epsilon, 1 + epsilon) * adv)
    per_token = -surrogate
    kl = torch.zeros_like(logps)
    if beta and ref_logps is not None:
        d = ref_logps - logps
        kl = torch.exp(d) - d - 1
        per_token = per_token + beta * kl
    denom = mask.sum(dim=1).clamp(min=1.0)
    loss = ((per_token * mask).sum(dim=1) / denom).mean()
    clipped = ((ratio < 1 - epsilon) | (ratio > 1 + epsilon)).to(logps.dtype)
    stats = {
        "kl": float(((kl * mask).sum(dim=1) / denom).mean()),
        "clip_fraction": float((clipped * mask).sum() / mask.sum().clamp(min=1.0)),
    }
    return loss, stats
