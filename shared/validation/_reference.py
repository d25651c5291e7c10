"""The reference validator: raw rows checked against a schema, column by column with pandas.

A DataFrame of raw values in (numbers, numeric strings, category spellings, `ABSENT` where a
JSON instance lacked a key), a `Validated` out. Rows are named by the frame's index, which holds
their positions in the input. Training cleans its data with the same function that serving
uses to check rows, so the two can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shared.errors import Problem
from shared.schema import CategoricalFeature, Feature, ModelSchema, NumericFeature
from shared.validation._numbers import numeric_cells
from shared.validation._values import (
    ABSENT,
    MISSING,
    NOT_FINITE,
    NUMBER,
    category,
    meant_by,
    missing_reason,
    number,
    received,
    unknown_reason,
)

# A fault found by position: the frame's row (None: every row), the field, the reason, and the
# value received.
_Fault = tuple[int | None, str, str, str | int | float | None]

# numpy floats come from codecs that read numbers straight to arrays (the CSV grid).
_NUMBER_TYPES = (int, float, np.float64)


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
    positional: list[_Fault] = []
    if not allow_extra:
        positional += _unknown_fields(frame, schema)
    near = _near(frame, schema) if allow_extra else {}
    columns: dict[str, np.ndarray] = {}
    for feature in schema.features:
        if feature.name not in frame.columns:
            if len(frame):
                positional.append((None, feature.name, missing_reason(feature.name, near), None))
            columns[feature.name] = np.full(len(frame), np.nan)
            continue
        raw = frame[feature.name]
        values, reasons = _check(feature, raw)
        columns[feature.name] = values
        positional += [
            (int(row), feature.name, str(reasons[row]), received(raw.iat[int(row)], values[row]))
            for row in np.flatnonzero(reasons)
        ]
    order = {name: position for position, name in enumerate(schema.feature_names)}
    positional.sort(key=lambda p: (-1 if p[0] is None else p[0], order.get(p[1], -1)))
    bad = np.zeros(len(frame), dtype=bool)
    bad[[fault[0] for fault in positional if fault[0] is not None]] = True
    if any(fault[0] is None for fault in positional):
        bad[:] = True
    problems = tuple(
        Problem(None if row is None else int(labels[row]), field, reason, shown)
        for row, field, reason, shown in positional
    )
    features = pd.DataFrame(columns, index=frame.index)
    return Validated(features=features[~bad], problems=problems)


def _unknown_fields(frame: pd.DataFrame, schema: ModelSchema) -> list[_Fault]:
    names = schema.feature_names
    known = set(names)
    found: list[_Fault] = []
    for column in frame.columns:
        if column in known:
            continue
        present = frame[column].map(lambda value: value is not ABSENT).to_numpy(dtype=bool)
        reason = unknown_reason(str(column), names)
        found += [(int(row), str(column), reason, None) for row in np.flatnonzero(present)]
    return found


def _near(frame: pd.DataFrame, schema: ModelSchema) -> dict[str, str]:
    """For each absent column, the column of the frame that was probably meant to be it."""
    names = schema.feature_names
    if all(name in frame.columns for name in names):
        return {}
    return meant_by((str(c) for c in frame.columns if c not in names), names)


def _check(feature: Feature, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Canonical values and, per row, the reason it is wrong ("" where it is fine)."""
    if isinstance(feature, NumericFeature):
        return _numeric(feature, column)
    return _categorical(feature, column)


def _numeric(feature: NumericFeature, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """`_values.number` for every value, vectorised for the common cases."""
    raw = column.to_numpy(dtype=object)
    reasons = np.full(len(raw), "", dtype=object)
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=float)
        reasons[np.isnan(values)] = MISSING
        reasons[np.isinf(values)] = NOT_FINITE
    else:
        values, done = _plain_numbers(raw)
        for row in np.flatnonzero(~done):
            values[row], reasons[row] = number(raw[row])
    ok = reasons == ""
    out_of_range = ok & ((values < feature.minimum) | (values > feature.maximum))
    reasons[out_of_range] = f"must be between {feature.minimum:g} and {feature.maximum:g}"
    return values, reasons


def _plain_numbers(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values of finite ints, floats and numeric strings, and where they were found."""
    if all(type(v) is str for v in raw):  # text cells: one regex pass over the whole column
        values = numeric_cells(raw)
        if values is not None:
            return values, np.isfinite(values)
    values = np.full(len(raw), np.nan)
    kinds = np.fromiter(
        (2 if isinstance(v, str) else 1 if type(v) in _NUMBER_TYPES else 0 for v in raw),
        np.int8,
        len(raw),
    )
    numbers, strings = kinds == 1, kinds == 2
    if numbers.any():
        try:
            values[numbers] = raw[numbers].astype(float)
        except OverflowError:  # an int too large for a float: the per-value rule names it
            numbers[:] = False
    if strings.any():
        matched = pd.Series(raw[strings], dtype=object).str.fullmatch(NUMBER.pattern)
        where = np.flatnonzero(strings)[matched.to_numpy(dtype=bool)]
        values[where] = np.fromiter(map(float, raw[where]), float, len(where))
        strings[:] = False
        strings[where] = True
    done = (numbers | strings) & np.isfinite(values)
    return values, done


def _categorical(feature: CategoricalFeature, column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    lookup = feature.lookup()
    checked = [category(feature, lookup, value) for value in column.to_numpy(dtype=object)]
    values = np.array([value for value, _ in checked], dtype=object)
    reasons = np.array([reason for _, reason in checked], dtype=object)
    return values, reasons
