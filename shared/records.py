"""The schema's rules for one value, and a validator for JSON instances in plain Python.

shared/preprocessing.py applies the same rules column by column with pandas (CSV files,
training data, large batches); `validate_records` applies them row by row without pandas, for
the small requests where importing and building a DataFrame would cost more than the work.
Both name the same rows, fields and reasons: tests feed the same rows through both.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from shared.errors import Problem
from shared.schema import NUMBER_PATTERN, CategoricalFeature, ModelSchema, NumericFeature


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()
"""Marks a key that a JSON instance did not have (unlike an explicit null)."""

MISSING = "missing"
NOT_A_NUMBER = "must be a number"
NOT_FINITE = "must be a finite number"
UNKNOWN_FIELD = "unknown field"
MISSING_COLUMN = "missing column"

_SPACE = r"[ \t\r\n\f\v]*"
NUMBER = re.compile(NUMBER_PATTERN.strip("^$"))
NOT_FINITE_WORD = re.compile(_SPACE + r"[-+]?(nan|inf|infinity)" + _SPACE, re.IGNORECASE)


def is_missing(value: object) -> bool:
    if value is ABSENT or value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NAType", "NaTType")  # pandas' missing markers


def number(value: object) -> tuple[float, str]:
    """(value, "") for a finite number or numeric string, else (nan, reason)."""
    if type(value) is float or type(value) is int:  # the common case, first
        try:
            parsed = float(value)
        except OverflowError:  # an int too large for a float
            return math.nan, NOT_FINITE
        if math.isfinite(parsed):
            return parsed, ""
        return math.nan, MISSING if math.isnan(parsed) else NOT_FINITE
    if isinstance(value, bool) or _is_numpy_bool(value):
        return math.nan, NOT_A_NUMBER
    if isinstance(value, str):
        if NUMBER.fullmatch(value):
            parsed = float(value)
            return (parsed, "") if math.isfinite(parsed) else (math.nan, NOT_FINITE)
        if is_missing(value):
            return math.nan, MISSING
        return math.nan, NOT_FINITE if NOT_FINITE_WORD.fullmatch(value) else NOT_A_NUMBER
    if is_missing(value):
        return math.nan, MISSING
    try:
        parsed = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return math.nan, NOT_A_NUMBER
    if isinstance(value, int | float) or hasattr(value, "dtype"):
        return (parsed, "") if math.isfinite(parsed) else (math.nan, NOT_FINITE)
    return math.nan, NOT_A_NUMBER


def _is_numpy_bool(value: object) -> bool:
    kind = type(value)
    return kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")


def in_range(feature: NumericFeature, value: float) -> str:
    if feature.minimum <= value <= feature.maximum:
        return ""
    return f"must be between {feature.minimum:g} and {feature.maximum:g}"


def category(
    feature: CategoricalFeature, lookup: Mapping[str, str], value: object
) -> tuple[str | None, str]:
    """(canonical category, "") or (None, reason)."""
    if isinstance(value, str):
        found = lookup.get(value.strip().casefold())
        if found is not None:
            return found, ""
    if is_missing(value):
        return None, MISSING
    return None, f"must be one of {', '.join(feature.categories)}"


def validate_records(
    instances: Sequence[Mapping[str, Any]], schema: ModelSchema
) -> tuple[list[dict[str, Any]], list[int], tuple[Problem, ...]]:
    """Canonical valid rows, their row numbers, and every fault (as preprocessing.validate)."""
    keys = list(dict.fromkeys(key for item in instances for key in item))
    known = set(schema.feature_names)
    rank = {key: i for i, key in enumerate(key for key in keys if key not in known)}
    absent = [f.name for f in schema.features if f.name not in keys] if instances else []
    lookups = {f.name: f.lookup() for f in schema.features if isinstance(f, CategoricalFeature)}
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    problems: list[Problem] = [Problem(None, name, MISSING_COLUMN) for name in absent]
    for position, item in enumerate(instances):
        # in the order the keys were first seen, as the frame's columns are
        extra = sorted((key for key in item if key not in known), key=rank.__getitem__)
        faults = [Problem(position, key, UNKNOWN_FIELD) for key in extra]
        row: dict[str, Any] = {}
        for feature in schema.features:
            if feature.name in absent:
                continue
            raw = item.get(feature.name, ABSENT)
            value: float | str | None
            if isinstance(feature, NumericFeature):
                value, reason = number(raw)
                reason = reason or in_range(feature, value)
            else:
                value, reason = category(feature, lookups[feature.name], raw)
            if reason:
                faults.append(Problem(position, feature.name, reason))
            row[feature.name] = value
        problems += faults
        if not faults and not absent:
            rows.append(row)
            numbers.append(position)
    return rows, numbers, tuple(problems)
