"""Predictions from a loaded model: options parsed, model run, results laid out per row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shared.errors import InvalidInput, Problem
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
    """One row per input row: the target column, plus interval and contribution columns."""
    _check_available(model, options)
    names = list(model.schema.feature_names)
    values = np.asarray(model.pipeline.predict(features[names]), dtype=float)
    return pd.DataFrame({model.schema.target: values}, index=features.index)


def json_predictions(result: pd.DataFrame, target: str, options: Options) -> list[Any]:
    """Bare numbers without extras (KServe V1 / Vertex clients read them as is), else objects."""
    if not options.extras:
        return result[target].tolist()
    return [dict(row) for row in result.to_dict(orient="records")]


def _check_available(model: LoadedModel, options: Options) -> None:
    problems = []
    if options.interval is not None and "intervals" not in model.metadata:
        problems.append(Problem(None, "parameters.interval", NOT_AVAILABLE))
    if options.explain and "explanations" not in model.metadata:
        problems.append(Problem(None, "parameters.explain", NOT_AVAILABLE))
    if problems:
        raise InvalidInput("requested output is not available for this model", tuple(problems))


def _is_level(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1
