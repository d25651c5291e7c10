"""Exact Shapley values of each feature for each prediction, against a background sample.

With k features, every one of the 2**k coalitions is evaluated: the value of a coalition is
the mean prediction when its features come from the row and the others from the background.
Contributions add up to the prediction minus the base value (the mean background prediction).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

MAX_ROWS_PER_BATCH = 200_000

Predict = Callable[[pd.DataFrame], np.ndarray]


def shapley(
    predict: Predict, rows: pd.DataFrame, background: pd.DataFrame, features: Sequence[str]
) -> tuple[float, np.ndarray]:
    """(base value, contributions with one column per feature, one row per input row)."""
    features = list(features)
    base = float(np.mean(predict(background[features])))
    if rows.empty:
        return base, np.empty((0, len(features)))
    masks = list(itertools.product((False, True), repeat=len(features)))
    step = max(1, MAX_ROWS_PER_BATCH // (len(background) * len(masks)))
    values = np.vstack(
        [
            _coalition_values(predict, rows.iloc[start : start + step], background, features, masks)
            for start in range(0, len(rows), step)
        ]
    )
    return base, _combine(values, masks, len(features))


def _coalition_values(
    predict: Predict,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    features: list[str],
    masks: list[tuple[bool, ...]],
) -> np.ndarray:
    """Mean prediction per row for every coalition, in one call to the model."""
    n_rows, n_background = len(rows), len(background)
    columns = {}
    for position, name in enumerate(features):
        kind = float if pd.api.types.is_numeric_dtype(background[name]) else object
        from_row = np.repeat(rows[name].to_numpy(dtype=kind), n_background)
        from_background = np.tile(background[name].to_numpy(dtype=kind), n_rows)
        columns[name] = np.concatenate(
            [from_row if mask[position] else from_background for mask in masks]
        )
    frame = pd.DataFrame(columns)
    predictions = np.asarray(predict(frame), dtype=float)
    means: np.ndarray = predictions.reshape(len(masks), n_rows, n_background).mean(axis=2)
    return means.T


def _combine(values: np.ndarray, masks: list[tuple[bool, ...]], k: int) -> np.ndarray:
    index = {mask: position for position, mask in enumerate(masks)}
    contributions = np.zeros((values.shape[0], k))
    for feature in range(k):
        for mask in masks:
            if mask[feature]:
                continue
            size = sum(mask)
            weight = math.factorial(size) * math.factorial(k - size - 1) / math.factorial(k)
            with_feature = (*mask[:feature], True, *mask[feature + 1 :])
            contributions[:, feature] += weight * (
                values[:, index[with_feature]] - values[:, index[mask]]
            )
    return contributions
