"""Split-conformal prediction intervals from absolute residuals on a calibration split.

For a level a and n calibration residuals, the half-width is the ceil((n + 1) * a)-th smallest
residual: over new rows from the same distribution the interval covers the truth with
probability at least a.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


class LevelTooHigh(ValueError):
    """The calibration set is too small to promise that level."""


def calibration_residuals(actual: Any, predicted: Any, keep: int, seed: int = 0) -> list[float]:
    """Sorted absolute residuals; a random subset of `keep` when there are more (still valid)."""
    import numpy as np  # training-time only; serving needs half_width alone

    residuals = np.abs(np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float))
    if len(residuals) > keep:
        residuals = np.random.default_rng(seed).choice(residuals, keep, replace=False)
    return [round(float(r), 6) for r in np.sort(residuals)]


def half_width(residuals: Sequence[float], level: float) -> float:
    count = len(residuals)
    rank = math.ceil((count + 1) * level)
    if rank > count:
        raise LevelTooHigh(f"at most {max_level(count):.4f} with {count} calibration rows")
    return float(residuals[rank - 1])


def max_level(count: int) -> float:
    return count / (count + 1)
