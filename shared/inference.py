"""Predictions from a loaded model: options parsed, model run, results laid out per row."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shared.errors import InvalidInput, Problem
from shared.explanations import shapley
from shared.intervals import LevelTooHigh, half_width
from shared.model_store import LoadedModel

NOT_AVAILABLE = "not available for this model"


@dataclass(frozen=True)
class Options:
    """What a request asked for beyond the bare prediction."""

    interval: float | None = None
    explain: bool = False

    @property
    def extras(self) -> bool:
        return self.interval is not None or self.explain


def parse_options(parameters: Mapping[str, Any]) -> Options:
    """`{"interval": 0.9, "explain": true}`; every fault reported at once."""
    problems = [
        Problem(None, f"parameters.{key}", "unknown parameter")
        for key in parameters
        if key not in {"interval", "explain"}
    ]
    interval = parameters.get("interval")
    if interval is not None and not _is_level(interval):
        problems.append(Problem(None, "parameters.interval", "must be a number between 0 and 1"))
    explain = parameters.get("explain", False)
    if not isinstance(explain, bool):
        problems.append(Problem(None, "parameters.explain", "must be true or false"))
    if problems:
        raise InvalidInput("invalid parameters", tuple(problems))
    return Options(interval=float(interval) if interval is not None else None, explain=explain)


def options_from_query(query: Mapping[str, str]) -> dict[str, Any]:
    """CSV requests carry options in the query string: `?interval=0.9&explain=true`."""
    parameters: dict[str, Any] = {}
    for key, value in query.items():
        if key == "explain":
            lowered = value.strip().lower()
            parameters[key] = {"true": True, "1": True, "false": False, "0": False}.get(
                lowered, value
            )
        elif key == "interval":
            try:
                parameters[key] = float(value)
            except ValueError:
                parameters[key] = value
        else:
            parameters[key] = value
    return parameters


def predict(model: LoadedModel, features: pd.DataFrame, options: Options) -> pd.DataFrame:
    """One row per input row: the target, then `<target>_lower`/`_upper` for an interval, then
    `base_value` and `contribution_<feature>` for explanations."""
    _check_available(model, options)
    _single_threaded_kernels()
    target, names = model.schema.target, list(model.schema.feature_names)
    rows = features[names]
    values = np.asarray(model.pipeline.predict(rows), dtype=float) if len(rows) else np.empty(0)
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


def interval_half_width(model: LoadedModel, level: float) -> float:
    try:
        return half_width(model.metadata["intervals"]["abs_residuals"], level)
    except LevelTooHigh as exc:
        raise InvalidInput(
            "interval level too high", (Problem(None, "parameters.interval", str(exc)),)
        ) from exc


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


def _check_available(model: LoadedModel, options: Options) -> None:
    problems = []
    if options.interval is not None and "intervals" not in model.metadata:
        problems.append(Problem(None, "parameters.interval", NOT_AVAILABLE))
    if options.explain and "explanations" not in model.metadata:
        problems.append(Problem(None, "parameters.explain", NOT_AVAILABLE))
    if problems:
        raise InvalidInput("requested output is not available for this model", tuple(problems))


_kernels_limited = False
_kernels_lock = threading.Lock()


def _single_threaded_kernels() -> None:
    """One OpenMP thread per prediction: requests already run on parallel threads, and nested
    thread pools on a small instance are many times slower, never faster."""
    global _kernels_limited
    if _kernels_limited:
        return
    with _kernels_lock:
        if not _kernels_limited:
            from threadpoolctl import threadpool_limits

            threadpool_limits(1, user_api="openmp")
            _kernels_limited = True


def _is_level(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1
