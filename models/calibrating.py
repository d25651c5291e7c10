"""Intervals at training time: the scale a model's residuals grow with, the calibration
scores, and the intervals serving will give, measured on rows the model never saw.

The bounds are computed by serving's own code (shared.predict's calibration, domain and
applicability), so a coverage in metadata.json is the coverage of what a request gets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import Pipeline

from models.compile import compile_pipeline
from shared.predict import LevelTooHigh, half_width
from shared.predict._applicability import outside_columns, ranges
from shared.predict._intervals import read_calibration
from shared.predict._paths import column_bounds
from shared.schema import ModelSchema

SCALE_FOLDS = 5
SCALE_MAX_ROWS = 50_000
FLOOR_SHARE = 0.1  # a scale never below this share of the mean residual: no zero widths


def fit_scale(
    winner: Pipeline,
    scale_model: Pipeline | None,
    features: pd.DataFrame,
    target: pd.Series,
    seed: int,
) -> dict[str, Any]:
    """How large the winner's residuals are for a row: a linear model of its out-of-fold
    absolute residuals on the fit rows (their size, not their sign), as a serving form."""
    if scale_model is None:
        return {}
    if len(features) > SCALE_MAX_ROWS:
        keep = np.sort(np.random.default_rng(seed).choice(len(features), SCALE_MAX_ROWS, False))
        features, target = features.iloc[keep], target.iloc[keep]
    folds = KFold(SCALE_FOLDS, shuffle=True, random_state=seed)
    out_of_fold = cross_val_predict(clone(winner), features, target, cv=folds)
    residuals = np.abs(target.to_numpy(dtype=float) - out_of_fold)
    fitted = clone(scale_model).fit(features, residuals)
    form = compile_pipeline(fitted)
    if form["estimator"]["kind"] != "linear":  # serving evaluates scales without the pipeline
        raise ValueError("a scale model must be linear")
    return {
        "form": form,
        "floor": round(float(FLOOR_SHARE * residuals.mean()), 6),
        "fitted_on": "out-of-fold absolute residuals of the fit rows",
    }


def scales(intervals: Mapping[str, Any], features: pd.DataFrame) -> np.ndarray:
    """Each row's scale, as serving computes it."""
    calibrated = read_calibration(intervals)
    assert calibrated is not None
    return np.asarray(calibrated.scale_columns(_columns(features), len(features)), dtype=float)


def bounds(
    metadata: Mapping[str, Any], features: pd.DataFrame, predicted: np.ndarray, level: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The interval serving gives each row (NaN where it withholds one); None when the model
    has no intervals or too few calibration scores for the level."""
    calibrated = read_calibration(metadata.get("intervals"))
    if calibrated is None:
        return None
    try:
        quantile = half_width(calibrated.scores, level)
    except LevelTooHigh:
        return None
    schema = ModelSchema.from_dict(metadata["schema"])
    columns = _columns(features)
    withheld = outside_columns(columns, len(features), ranges(metadata, schema)).any()
    lower, upper = column_bounds(
        calibrated,
        quantile,
        np.asarray(predicted, dtype=float),
        columns,
        withheld,
        schema.target_minimum,
    )
    return np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)


def coverage(actual: np.ndarray, interval: tuple[np.ndarray, np.ndarray] | None) -> float | None:
    """Share of rows inside their interval, over the rows given one."""
    if interval is None:
        return None
    lower, upper = interval
    given = ~np.isnan(lower)
    if not given.any():
        return None
    inside = (lower[given] <= actual[given]) & (actual[given] <= upper[given])
    return round(float(inside.mean()), 4)


def mean_width(interval: tuple[np.ndarray, np.ndarray] | None) -> float | None:
    if interval is None:
        return None
    widths = interval[1] - interval[0]
    given = ~np.isnan(widths)
    return round(float(widths[given].mean()), 6) if given.any() else None


def _columns(features: pd.DataFrame) -> dict[str, Any]:
    return {str(name): features[name].to_numpy() for name in features.columns}
