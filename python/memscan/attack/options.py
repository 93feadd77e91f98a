"""The attacks' settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AttackOptions:
    neighbours: int = 25  # MIAU (the paper's): neighbours per candidate (0: skip it)
    mask_pct: float = 0.3  # MIAU: the authors' masking percentage
    reference_share: float = 0.5  # z-score test: share of the unseen set held as known non-members
    swap_neighbours: int = 4  # z-score test: swapped copies per sequence for `zscore_swap` (0: skip it)
    swap_share: float = 0.1  # share of positions swapped with their right neighbour
    min_k: float = 0.2  # Min-K% and Min-K%++ average the lowest k of the token scores
    seed: int = 0
    batch_size: int = 8
