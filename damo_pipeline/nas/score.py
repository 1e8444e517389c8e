"""The MAE-NAS zero-shot score: multi-scale entropy of an untrained, data-free network.

Two estimators of the same quantity (``spec/nas.md`` §4):

* :func:`entropy_score` — the closed form DAMO-YOLO's searches used ("madnas"): a linear conv stack with
  N(0, 1) weights fed N(0, 1) noise multiplies the feature std by ``sqrt(fan_in)`` per conv, so the
  log-std at the end of each stage is a sum of ``0.5 * ln(fan_in)`` terms. Pure Python, float64, no torch,
  about 20 microseconds; it equals the official values to ~1e-13 relative.
* :func:`noise_entropy_score` — the forward estimator (TinyNAS v1 ``entropy``): really runs the linear conv
  stack on Gaussian noise with Gaussian weights, re-normalising by the global std after every conv and
  summing the log-stds. Stochastic and slow; a cross-check (zero padding at the borders makes it read a
  little lower than the closed form).

Both score the *search-time* network (stem conv on the 12-channel Focus output, BN, ReLU and shortcuts
removed), not the deployed backbone; the stem's input width is therefore an argument (12 by default).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from .space import STEM, Structure

logger = logging.getLogger(__name__)

DAMOYOLO_STAGE_WEIGHTS: Tuple[float, ...] = (0.0, 0.0, 1.0, 1.0, 16.0)
"""Stage weights alpha of every DAMO-YOLO search (``last_ratio`` = 16)."""
MAE_DET_STAGE_WEIGHTS: Tuple[float, ...] = (0.0, 0.0, 1.0, 1.0, 6.0)
"""The MAE-DET paper's default weights."""
SEARCH_STEM_IN_CHANNELS = 12
"""Stem input width of the search-time network: a 640x640x3 image reaches the stem as 320x320x12 (Focus)."""


@dataclass(frozen=True)
class EntropyScore:
    """A structure's score and its parts.

    Attributes:
        score: ``sum_i alpha_i * entropies[i]`` over stages with a non-zero weight.
        stage_terms: ``alpha_i * entropies[i]`` per stage (0 for zero-weight stages).
        entropies: log-std (entropy up to a constant) at the end of each stage C1..C5.
        unit_gains: log-gain of every unit (stem first) in network order.
    """

    score: float
    stage_terms: Tuple[float, ...]
    entropies: Tuple[float, ...]
    unit_gains: Tuple[float, ...]


def stage_ends(structure: Structure) -> List[int]:
    """Indices of the blocks that close a stage: the block before every stride-2 block, and the last one.

    For the DAMO-YOLO skeleton this is ``[0, 1, 2, 4, 5]`` (strides 2, 4, 8, 16, 32 of the image).
    """
    ends = [i - 1 for i in range(1, len(structure)) if structure[i].s == 2]
    ends.append(len(structure) - 1)
    return ends


def unit_gains(structure: Structure, stem_in_channels: Optional[int] = SEARCH_STEM_IN_CHANNELS) -> List[List[float]]:
    """Per block, the log-gain ``ln(std_out / std_in)`` of each of its units in the closed form.

    Stem: ``0.5 ln(C_in k^2)``; a k1kx unit with input width ``c``: ``0.5 ln(c) + 0.5 ln(btn k^2)``; a kxkx
    unit: ``0.5 ln(c k^2) + 0.5 ln(btn k^2)``. ``c`` is the block's ``in`` for unit 0 and its ``out`` after.
    ``stem_in_channels=None`` uses the structure's own stem ``in``.
    """
    gains: List[List[float]] = []
    for i, block in enumerate(structure):
        if block.kind == STEM:
            c_in = block.c_in if (stem_in_channels is None or i > 0) else stem_in_channels
            gains.append([0.5 * math.log(c_in * block.k ** 2)])
            continue
        block_gains = []
        for u in range(block.L):
            c = block.c_in if u == 0 else block.c_out
            first_fan_in = c if block.kind == "k1kx" else c * block.k ** 2
            block_gains.append(0.5 * math.log(first_fan_in) + 0.5 * math.log(block.btn * block.k ** 2))
        gains.append(block_gains)
    return gains


def _check_weights(structure: Structure, stage_weights: Sequence[float]) -> List[int]:
    ends = stage_ends(structure)
    if len(stage_weights) != len(ends):
        raise ValueError(f"stage_weights has {len(stage_weights)} values but the structure has {len(ends)} "
                         f"stages (closed by blocks {ends}); give one weight per stage, e.g. "
                         f"{list(DAMOYOLO_STAGE_WEIGHTS)}.")
    return ends


def entropy_score(structure: Structure, stage_weights: Sequence[float] = DAMOYOLO_STAGE_WEIGHTS,
                  stem_in_channels: Optional[int] = SEARCH_STEM_IN_CHANNELS) -> EntropyScore:
    """The closed-form MAE-NAS score of ``structure`` (float64, exact; ``spec/nas.md`` §4.3).

    Stage ``i`` entropy = (sum of the gains of every unit up to the stage's closing block) + ln(C_i), with
    ``C_i`` the closing block's ``out``. Sums run in network order, so the value matches TinyNAS's to ~1e-13.

    Args:
        structure: the candidate.
        stage_weights: alpha per stage C1..C5; stages weighted 0 are skipped.
        stem_in_channels: input width of the stem conv (12: the official search-time setting; ``None``: the
            structure's own, 3 for a deploy-form structure).

    Raises:
        ValueError: ``stage_weights`` does not have one value per stage.
    """
    ends = _check_weights(structure, stage_weights)
    gains = unit_gains(structure, stem_in_channels)
    flat = [g for block_gains in gains for g in block_gains]
    entropies, terms = [], []
    for alpha, end in zip(stage_weights, ends):
        units = sum(len(g) for g in gains[: end + 1])
        log_std = 0.0
        for g in flat[:units]:
            log_std += g
        entropy = log_std + math.log(structure[end].c_out)
        entropies.append(entropy)
        terms.append(alpha * entropy if alpha != 0 else 0.0)
    score = 0.0
    for alpha, term in zip(stage_weights, terms):
        if alpha != 0:
            score += term
    return EntropyScore(score, tuple(terms), tuple(entropies), tuple(flat))


def noise_entropy_score(structure: Structure, stage_weights: Sequence[float] = DAMOYOLO_STAGE_WEIGHTS,
                        stem_in_channels: int = SEARCH_STEM_IN_CHANNELS, resolution: int = 320,
                        batch_size: int = 32, repeats: int = 4, seed: int = 0, device: str = "cpu") -> float:
    """The forward (noise-input) estimate of the score: mean over ``repeats`` draws.

    Each repeat draws fresh N(0, 1) weights for every conv and an N(0, 1) input
    ``[batch_size, stem_in_channels, resolution, resolution]``, runs the search-time network as a plain
    linear conv stack (no BN, activation or shortcut; zero padding ``k // 2``), divides every conv output by
    its global (unbiased) std and accumulates the log of that std. Stage entropy = accumulated log-std at the
    stage's end + ln(C_i). The official setting is 320 px, batch 32, 4 repeats (minutes per structure on a
    CPU); smaller settings agree with :func:`entropy_score` to about a percent.

    Args:
        seed: seed of the torch generator that draws weights and inputs (the result is reproducible on one
            machine and torch version, not bit-identical across them).
        device: torch device to run on.

    Raises:
        ValueError: bad sizes or ``stage_weights`` not matching the stages.
    """
    import torch
    import torch.nn.functional as F

    ends = _check_weights(structure, stage_weights)
    if resolution < 2 ** (sum(1 for b in structure if b.s == 2)) or batch_size < 1 or repeats < 1:
        raise ValueError(f"resolution={resolution} must survive every stride-2 block, and batch_size={batch_size}, "
                         f"repeats={repeats} must be >= 1.")
    generator = torch.Generator(device=device).manual_seed(seed)

    def conv(x: "torch.Tensor", c_out: int, k: int, s: int) -> Tuple["torch.Tensor", float]:
        weight = torch.randn(c_out, x.shape[1], k, k, generator=generator, device=device)
        y = F.conv2d(x, weight, stride=s, padding=k // 2)
        std = float(y.std())
        return y / std, math.log(std)

    scores = []
    with torch.no_grad():
        for _ in range(repeats):
            x = torch.randn(batch_size, stem_in_channels, resolution, resolution, generator=generator, device=device)
            log_std = 0.0
            entropies = []
            for i, block in enumerate(structure):
                if block.kind == STEM:
                    x, g = conv(x, block.c_out, block.k, block.s)
                    log_std += g
                else:
                    first_k = 1 if block.kind == "k1kx" else block.k
                    for u in range(block.L):
                        x, g1 = conv(x, block.btn, first_k, 1)
                        x, g2 = conv(x, block.c_out, block.k, block.s if u == 0 else 1)
                        log_std += g1 + g2
                if i in ends:
                    entropies.append(log_std + math.log(block.c_out))
            scores.append(sum(a * h for a, h in zip(stage_weights, entropies) if a != 0))
    return sum(scores) / len(scores)
