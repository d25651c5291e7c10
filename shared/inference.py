"""Predictions from a loaded model: options parsed, model run, results laid out per row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from shared.explanations import shapley
from shared.kernels import cores_for
from shared.options import (
    NOT_AVAILABLE,
    Options,
    check_available,
    interval_half_width,
    options_from_query,
    parse_options,
)
from shared.store import LoadedModel

__all__ = [
    "NOT_AVAILABLE",
    "Options",
    "json_predictions",
    "options_from_query",
    "parse_options",
    "predict",
]


def predict(model: LoadedModel, features: pd.DataFrame, options: Options) -> pd.DataFrame:
    """One row per input row: the target, then `<target>_lower`/`_upper` for an interval, then
    `base_value` and `contribution_<feature>` for explanations."""
    check_available(model, options)
    target, names = model.schema.target, list(model.schema.feature_names)
    rows = features[names]
    values = _predict_values(model, rows)
    result = pd.DataFrame({target: values}, index=features.index)
    if options.interval is not None:
        width = interval_half_width(model, options.interval)
        result[f"{target}_lower"] = values - width
        result[f"{target}_upper"] = values + width
    if options.explain:
        background = pd.DataFrame(model.metadata["explanations"]["background"])[names]
        base, contributions = shapley(model.pipeline.predict, rows, background, names)
        result["base_value"] = base
        for position, name in enumerate(names):
            result[f"contribution_{name}"] = contributions[:, position]
    return result


def _predict_values(model: LoadedModel, rows: pd.DataFrame) -> np.ndarray:
    if not len(rows):
        return np.empty(0)
    compiled = model.compiled
    if compiled is not None and len(rows) <= compiled.max_rows:
        records: list[dict[str, Any]] = rows.to_dict(orient="records")  # type: ignore[assignment]
        return np.asarray(compiled.predict(records), dtype=float)
    pipeline = model.pipeline
    with cores_for(len(rows)):
        return np.asarray(pipeline.predict(rows), dtype=float)


def json_predictions(
    result: pd.DataFrame, target: str, features: Sequence[str], options: Options
) -> list[Any]:
    """Bare numbers without extras (KServe V1 / Vertex clients read them as is), else objects."""
    values = result[target].tolist()
    if not options.extras:
        return values
    predictions: list[dict[str, Any]] = [{target: value} for value in values]
    if options.interval is not None:
        lower, upper = result[f"{target}_lower"].tolist(), result[f"{target}_upper"].tolist()
        for prediction, low, high in zip(predictions, lower, upper, strict=True):
            prediction["interval"] = {"level": options.interval, "lower": low, "upper": high}
    if options.explain:
        columns = {name: result[f"contribution_{name}"].tolist() for name in features}
        base = result["base_value"].tolist()
        for row, prediction in enumerate(predictions):
            prediction["base_value"] = base[row]
            prediction["contributions"] = {name: columns[name][row] for name in features}
    return predictions
