"""What one call to `predict` gives back, and the names of its output columns.

Every protocol lays out the same `Prediction`: JSON objects, CSV columns, tensors, BigQuery
replies, scored files. Column names are spelled here only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.errors import InvalidInput, Problem
from shared.predict._applicability import OUTSIDE, Outside
from shared.predict._options import DEFAULT_LEVEL, Options
from shared.schema import ModelSchema

BASE_VALUE = "base_value"
WITHHELD = "outside the training range: not calibrated there"

Numbers = Any  # a list of floats (small inputs) or a numpy array of them (batches)
Positions = Any  # a list of ints or a numpy array of them, ascending


def lower_name(target: str) -> str:
    return f"{target}_lower"


def upper_name(target: str) -> str:
    return f"{target}_upper"


def contribution_name(feature: str) -> str:
    return f"contribution_{feature}"


def output_columns(schema: ModelSchema, options: Options | None = None) -> list[str]:
    """The columns a prediction has, in order: those `options` ask for, or every one there can
    be (None)."""
    target = schema.target
    names = [target]
    if options is None or options.interval is not None:
        names += [lower_name(target), upper_name(target)]
    names.append(OUTSIDE)
    if options is None or options.explain:
        names += [BASE_VALUE, *map(contribution_name, schema.feature_names)]
    return names


def options_for_outputs(schema: ModelSchema, outputs: Sequence[str], options: Options) -> Options:
    """`options` with what the named outputs (each one of `output_columns`) need: a bound, an
    interval (at DEFAULT_LEVEL unless `options` has a level); `base_value` or a contribution,
    explanations. An option the outputs imply is reported under the first output that asked."""
    target = schema.target
    bounds = [name for name in outputs if name in (lower_name(target), upper_name(target))]
    explained = {BASE_VALUE, *map(contribution_name, schema.feature_names)}
    explaining = [name for name in outputs if name in explained]
    asked_by = dict(options.asked_by)
    interval, explain = options.interval, options.explain
    if bounds and interval is None:
        interval, asked_by["interval"] = DEFAULT_LEVEL, f"outputs.{bounds[0]}"
    if explaining and not explain:
        explain, asked_by["explain"] = True, f"outputs.{explaining[0]}"
    return replace(options, interval=interval, explain=explain, asked_by=asked_by)


@dataclass(frozen=True)
class Interval:
    """Bounds per row; None (NaN in arrays) where the row lies outside the training range:
    the interval is withheld there rather than given a width never calibrated for it."""

    level: float
    lower: Numbers
    upper: Numbers


@dataclass(frozen=True)
class Explanation:
    """Exact Shapley values: `base_value` + the contributions of a row = its prediction."""

    base_value: float
    contributions: Mapping[str, Numbers]


@dataclass(frozen=True)
class Prediction:
    """Predictions for the rows at `positions` (ascending positions in the input), and every
    fault of the others. `values` is a list for small inputs, a numpy array for batches."""

    schema: ModelSchema
    positions: Positions
    values: Numbers
    problems: tuple[Problem, ...] = ()
    interval: Interval | None = None
    explanation: Explanation | None = None
    options: Options = field(default_factory=Options)
    outside: Outside | None = None  # per row, the features outside the training range

    def __len__(self) -> int:
        return len(self.values)

    def columns(self) -> dict[str, Any]:
        """Each output column by name, in `output_columns` order, one value per row."""
        target = self.schema.target
        columns: dict[str, Any] = {target: self.values}
        if self.interval is not None:
            columns[lower_name(target)] = self.interval.lower
            columns[upper_name(target)] = self.interval.upper
        columns[OUTSIDE] = self.outside.texts() if self.outside else [""] * len(self)
        if self.explanation is not None:
            columns[BASE_VALUE] = [self.explanation.base_value] * len(self)
            for name in self.schema.feature_names:
                columns[contribution_name(name)] = self.explanation.contributions[name]
        return columns

    def objects(self) -> list[dict[str, Any]]:
        """One JSON object per row: the target, then `interval`, `outside_training_range`,
        `base_value`, `contributions`."""
        target = self.schema.target
        objects: list[dict[str, Any]] = [{target: value} for value in as_list(self.values)]
        if self.interval is not None:
            level = self.interval.level
            lower, upper = as_list(self.interval.lower), as_list(self.interval.upper)
            for item, low, high in zip(objects, lower, upper, strict=True):
                item["interval"] = _interval_object(level, low, high)
        outside = self.outside.names() if self.outside else [[] for _ in objects]
        for item, features in zip(objects, outside, strict=True):
            item[OUTSIDE] = features
        if self.explanation is not None:
            names = self.schema.feature_names
            columns = [as_list(self.explanation.contributions[name]) for name in names]
            for row, item in enumerate(objects):
                item[BASE_VALUE] = self.explanation.base_value
                item["contributions"] = {n: c[row] for n, c in zip(names, columns, strict=True)}
        return objects


def _interval_object(level: float, lower: float | None, upper: float | None) -> dict[str, Any]:
    if lower is None or upper is None or lower != lower:  # withheld (None, or NaN from numpy)
        return {"level": level, "lower": None, "upper": None, "withheld": WITHHELD}
    return {"level": level, "lower": lower, "upper": upper}


def as_list(values: Numbers) -> list[float]:
    """Python floats, from a list or a numpy array."""
    return values if isinstance(values, list) else list(values.tolist())


def invalid_rows(problems: tuple[Problem, ...], rows: int) -> InvalidInput:
    """The error for a request with faults: how many rows are at fault, and every fault."""
    invalid = len({p.row for p in problems if p.row is not None}) or "all"
    return InvalidInput(f"{invalid} of {rows} rows are invalid", problems)
