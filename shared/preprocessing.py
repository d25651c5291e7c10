"""Check raw rows against a model's schema and turn them into the model's input frame.

Pure pandas: a DataFrame of raw values in (numbers, numeric strings, category spellings,
`ABSENT` where a JSON instance lacked a key), a `Validated` out. Training cleans its data with
the same function that serving uses to check requests, so the two can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shared.errors import Problem
from shared.schema import CategoricalFeature, Feature, ModelSchema, NumericFeature


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


@dataclass(frozen=True)
class Validated:
    """`features`: the valid rows only, canonical values, indexed by their input row number."""

    features: pd.DataFrame
    problems: tuple[Problem, ...]

    @property
    def rejected_rows(self) -> frozenset[int]:
        return frozenset(p.row for p in self.problems if p.row is not None)


def validate(frame: pd.DataFrame, schema: ModelSchema, *, allow_extra: bool = False) -> Validated:
    """Every row and field of `frame` checked against `schema`; all faults reported.

    Rows are named by the frame's (integer) index, so a caller that set rows aside keeps
    its own numbering in `problems` and in `features.index`.
    """
    labels = frame.index.to_numpy()
    positional: list[tuple[int | None, str, str]] = []
    if not allow_extra:
        positional += _unknown_fields(frame, schema)
    columns: dict[str, np.ndarray] = {}
    for feature in schema.features:
        if feature.name not in frame.columns:
            if len(frame):
                positional.append((None, feature.name, MISSING_COLUMN))
            columns[feature.name] = np.full(len(frame), np.nan)
            continue
        values, reasons = _check(feature, frame[feature.name])
        columns[feature.name] = values
        positional += [
            (int(row), feature.name, str(reasons[row])) for row in np.flatnonzero(reasons)
        ]
    order = {name: position for position, name in enumerate(schema.feature_names)}
    positional.sort(key=lambda p: (-1 if p[0] is None else p[0], order.get(p[1], -1)))
    bad = np.zeros(len(frame), dtype=bool)
    bad[[row for row, _, _ in positional if row is not None]] = True
    if any(row is None for row, _, _ in positional):
        bad[:] = True
    problems = tuple(
        Problem(None if row is None else int(labels[row]), field, reason)
        for row, field, reason in positional
    )
    features = pd.DataFrame(columns, index=frame.index)
    return Validated(features=features[~bad], problems=problems)


def _unknown_fields(frame: pd.DataFrame, schema: ModelSchema) -> list[tuple[int | None, str, str]]:
    known = set(schema.feature_names)
    found: list[tuple[int | None, str, str]] = []
    for column in frame.columns:
        if column in known:
            continue
        present = frame[column].map(lambda value: value is not ABSENT).to_numpy(dtype=bool)
        found += [(int(row), str(column), UNKNOWN_FIELD) for row in np.flatnonzero(present)]
    return found


def _check(feature: Feature, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Canonical values and, per row, the reason it is wrong ("" where it is fine)."""
    if isinstance(feature, NumericFeature):
        return _numeric(feature, column)
    return _categorical(feature, column)


def _numeric(feature: NumericFeature, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    raw = column.to_numpy(dtype=object)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=float)
    else:
        is_bool = np.fromiter((isinstance(v, bool | np.bool_) for v in raw), bool, len(raw))
        values = pd.to_numeric(pd.Series(raw).mask(is_bool), errors="coerce").to_numpy(float)
    reasons = np.full(len(raw), "", dtype=object)
    not_finite = ~np.isfinite(values)
    for row in np.flatnonzero(not_finite):
        reasons[row] = _why_not_a_number(raw[row])
    out_of_range = ~not_finite & ((values < feature.minimum) | (values > feature.maximum))
    reasons[out_of_range] = f"must be between {feature.minimum:g} and {feature.maximum:g}"
    return values, reasons


def _why_not_a_number(value: object) -> str:
    if _is_missing(value):
        return MISSING
    if isinstance(value, bool | np.bool_):
        return NOT_A_NUMBER
    if isinstance(value, str):
        word = value.strip().lower().lstrip("+-")
        return NOT_FINITE if word in {"nan", "inf", "infinity"} else NOT_A_NUMBER
    if isinstance(value, int | float | np.number):
        return NOT_FINITE
    return NOT_A_NUMBER


def _is_missing(value: object) -> bool:
    if value is ABSENT or value is None or value is pd.NA:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    return isinstance(value, float) and math.isnan(value)


def _categorical(feature: CategoricalFeature, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    lookup = feature.lookup()
    expected = f"must be one of {', '.join(feature.categories)}"
    spell: Callable[[object], str | None] = lambda v: (  # noqa: E731
        lookup.get(v.strip().casefold()) if isinstance(v, str) else None
    )
    raw = column.to_numpy(dtype=object)
    values = np.array([spell(v) for v in raw], dtype=object)
    reasons = np.full(len(raw), "", dtype=object)
    for row in np.flatnonzero(values == None):  # noqa: E711 (element-wise comparison)
        reasons[row] = MISSING if _is_missing(raw[row]) else expected
    return values, reasons
