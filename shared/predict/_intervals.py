"""Normalised split-conformal prediction intervals, from scores on a calibration split.

A row's score is its absolute residual divided by its scale: a model of how large residuals
are there (`scale.form`, a serving form fitted on out-of-fold residuals of the fit rows, never
below `scale.floor`), a feature the error grows with (`scale.feature`: the market's level, so
its intervals are relative), or 1 (plain split-conformal: one width for every row). For a level
a and n calibration scores, the half-width is the ceil((n + 1) * a)-th smallest score times the
row's scale: over new rows from the same distribution the interval covers the truth with
probability at least a, and its width follows the row's uncertainty.

metadata.json `intervals`: {"method", "scores" (sorted), "scale": {"form", "floor"} or
{"feature"} or {}}. Models published before scales carry "abs_residuals" (scale 1).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.once import once_per

if TYPE_CHECKING:
    from shared.predict._compiled import CompiledModel
    from shared.store import LoadedModel


class LevelTooHigh(ValueError):
    """The calibration set is too small to promise that level."""


def calibration_scores(
    actual: Any, predicted: Any, scale: Any, keep: int, seed: int = 0
) -> list[float]:
    """Sorted |actual - predicted| / scale; a random subset of `keep` when there are more
    (still valid: the subset is exchangeable with new rows too)."""
    import numpy as np  # training-time only; serving needs half_width alone

    residuals = np.abs(np.asarray(actual, dtype=float) - np.asarray(predicted, dtype=float))
    scores = residuals / np.asarray(scale, dtype=float)
    if len(scores) > keep:
        scores = np.random.default_rng(seed).choice(scores, keep, replace=False)
    return [round(float(r), 8) for r in np.sort(scores)]


def half_width(scores: Sequence[float], level: float) -> float:
    """The score quantile for `level`: a row's half-width is this times its scale."""
    count = len(scores)
    rank = math.ceil((count + 1) * level)
    if rank > count:
        raise LevelTooHigh(f"at most {max_level(count):.4f} with {count} calibration rows")
    return float(scores[rank - 1])


def max_level(count: int) -> float:
    return count / (count + 1)


@dataclass(frozen=True)
class Calibration:
    """A model's calibration scores and how to scale them for a row."""

    scores: Sequence[float]
    feature: str | None = None
    form: CompiledModel | None = None
    floor: float = 0.0

    def scale_records(self, records: Sequence[Mapping[str, Any]]) -> list[float]:
        if self.form is not None:
            return [max(self.floor, self.form.predict_one(record)) for record in records]
        if self.feature is not None:
            return [float(record[self.feature]) for record in records]
        return [1.0] * len(records)

    def scale_columns(self, columns: Mapping[str, Any], count: int) -> Any:
        import numpy as np  # batches only

        if self.form is not None:
            values = self.form.predict_columns(columns, _no_trees)
            return np.maximum(self.floor, values)
        if self.feature is not None:
            return np.asarray(columns[self.feature], dtype=float)
        return np.ones(count)


@once_per
def calibration(model: LoadedModel) -> Calibration | None:
    """The model's calibration, read once per loaded version; None when it has no intervals."""
    return read_calibration(model.metadata.get("intervals"))


def read_calibration(intervals: Any) -> Calibration | None:
    """The calibration metadata.json's `intervals` describe; None when there is none."""
    if not isinstance(intervals, Mapping):
        return None
    if "abs_residuals" in intervals:
        return Calibration(intervals["abs_residuals"])
    scale = intervals.get("scale") or {}
    form = None
    if "form" in scale:
        from shared.predict._compiled import CompiledModel

        form = CompiledModel(scale["form"])
    return Calibration(
        intervals["scores"], scale.get("feature"), form, float(scale.get("floor", 0.0))
    )


def _no_trees() -> Any:
    raise ValueError("a scale model is linear; it has no trees")
