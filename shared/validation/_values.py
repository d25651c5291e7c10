"""The schema's rules for one value: what is missing, a number, in range, a category.

Every validator of the package applies these rules, and names faults with these reasons.
Plain Python: the row-by-row validator runs without numpy or pandas.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from shared.schema import NUMBER_PATTERN, CategoricalFeature, NumericFeature


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
