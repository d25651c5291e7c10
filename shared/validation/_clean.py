"""The clean check: rows whose every value is plainly valid, read column by column with numpy.

The common batch has numbers in range and categories spelled as the schema allows; such rows go
straight into canonical columns. The check never decides an error: a row it cannot pass is
handed to a reference validator, which decides whether it is valid and names its faults.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shared.schema import CategoricalFeature, ModelSchema
from shared.validation._numbers import numeric_cells
from shared.validation._values import NUMBER


def clean_records(
    objects: Sequence[Mapping[str, Any]], schema: ModelSchema
) -> dict[str, Any] | None:
    """Canonical columns of JSON objects, or None unless every row is clean.

    A clean row has exactly the model's fields, numbers as JSON numbers, categories as strings.
    """
    names = schema.feature_names
    if objects and set(map(len, objects)) != {len(names)}:
        return None
    try:
        raw = {name: list(map(operator.itemgetter(name), objects)) for name in names}
    except KeyError:
        return None
    columns, clean = clean_columns(raw, len(objects), schema)
    return columns if clean.all() else None


def clean_columns(
    raw: Mapping[str, Sequence[Any]], count: int, schema: ModelSchema
) -> tuple[dict[str, Any], np.ndarray]:
    """The model's columns, canonical, and which of the `count` rows are clean.

    Cells may be text (CSV) or JSON values. A row that is not clean holds placeholders (NaN,
    None) and must go to a reference validator.
    """
    clean = np.ones(count, dtype=bool)
    columns: dict[str, Any] = {}
    for feature in schema.features:
        if feature.name not in raw:
            return {}, np.zeros(count, dtype=bool)
        values = raw[feature.name]
        if isinstance(feature, CategoricalFeature):
            columns[feature.name] = _categories(feature, values)
            clean &= columns[feature.name] != None  # noqa: E711 (element by element)
            continue
        columns[feature.name] = numbers = _numbers(values)
        with np.errstate(invalid="ignore"):
            clean &= np.isfinite(numbers) & (feature.minimum <= numbers)
            clean &= numbers <= feature.maximum
    return columns, clean


def _categories(feature: CategoricalFeature, raw: Sequence[Any]) -> np.ndarray:
    """Canonical categories; None where a value is not a known spelling as a string.

    Each distinct value is looked up once; a column already spelled canonically (the common
    batch) is taken as it is."""
    lookup = feature.lookup()
    try:
        spelled = {value: _canonical(lookup, value) for value in set(raw)}
    except TypeError:  # an unhashable value (a JSON list or object): value by value
        return np.array([_canonical(lookup, value) for value in raw], dtype=object)
    if all(type(value) is str and spelled[value] == value for value in spelled):
        return np.array(raw, dtype=object)
    return np.array(list(map(spelled.__getitem__, raw)), dtype=object)


def _canonical(lookup: Mapping[str, str], value: Any) -> str | None:
    """The category a string spells; None for anything else (left to the reference)."""
    return lookup.get(value.strip().casefold()) if type(value) is str else None


def _numbers(raw: Sequence[Any]) -> np.ndarray:
    """Floats; NaN where a value is not a number as written (left to the reference)."""
    if isinstance(raw, np.ndarray) and raw.dtype == np.float64:  # typed by the codec already
        return raw.copy()  # a copy: the caller fills in the rows the reference passes
    kinds = set(map(type, raw))
    if kinds <= {str}:
        values = numeric_cells(raw)
        if values is not None:
            return values
        parsed = (float(v) if NUMBER.fullmatch(v) else math.nan for v in raw)
        return np.fromiter(parsed, float, len(raw))
    if kinds <= {float, int}:
        try:
            return np.asarray(raw, dtype=float)
        except OverflowError:  # an int too large for a float
            pass
    return np.fromiter(map(_plain_number, raw), float, len(raw))


def _plain_number(value: Any) -> float:
    if type(value) not in (float, int):
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.nan
