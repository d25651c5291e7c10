"""Batches scored column by column with numpy, when every value is clean.

The common batch, JSON instances with exactly the model's fields (or CSV rows whose model
columns are) with numbers in range and categories spelled as the schema allows, is turned
straight into the model's input matrix. Anything else returns None and goes the reference way
(pandas validation, which names every fault): this path never decides an error.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from shared.codecs import Table
from shared.compiled_model import CompiledModel
from shared.kernels import cores_for
from shared.records import NUMBER
from shared.schema import CategoricalFeature, ModelSchema
from shared.store import LoadedModel


def clean_columns(
    objects: Sequence[Mapping[str, Any]], model: LoadedModel
) -> dict[str, Any] | None:
    """Canonical columns, or None if any value needs the reference validator."""
    names = model.schema.feature_names
    if objects and set(map(len, objects)) != {len(names)}:
        return None
    columns: dict[str, Any] = {}
    try:
        for feature in model.schema.features:
            raw = list(map(operator.itemgetter(feature.name), objects))
            kinds = set(map(type, raw))
            if isinstance(feature, CategoricalFeature):
                if not kinds <= {str}:
                    return None
                lookup = feature.lookup()
                spelled = {v: lookup.get(v.strip().casefold()) for v in set(raw)}
                if None in spelled.values():
                    return None
                columns[feature.name] = list(map(spelled.__getitem__, raw))
            else:
                if not kinds <= {float, int}:
                    return None
                values = np.asarray(raw, dtype=float)
                if not (
                    np.isfinite(values).all()
                    and feature.minimum <= values.min(initial=feature.minimum)
                    and values.max(initial=feature.maximum) <= feature.maximum
                ):
                    return None
                columns[feature.name] = values
    except (KeyError, OverflowError):
        return None
    return columns


def clean_text_columns(table: Table, model: LoadedModel) -> dict[str, Any] | None:
    """The model's columns of a CSV table, canonical, or None if any cell needs the reference."""
    if not len(table) or not set(model.schema.feature_names) <= set(table.header):
        return None
    columns, clean = clean_cells(table.columns(), model.schema)
    return columns if clean.all() else None


def clean_cells(
    cells: Mapping[str, Sequence[str]], schema: ModelSchema
) -> tuple[dict[str, Any], np.ndarray]:
    """The model's columns of text cells, canonical, and which rows are clean.

    A row that is not clean holds placeholders (NaN, None) and must go to the reference
    validator, which decides whether it is valid and names its faults.
    """
    n = len(cells[schema.feature_names[0]])
    clean = np.ones(n, dtype=bool)
    columns: dict[str, Any] = {}
    for feature in schema.features:
        raw = cells[feature.name]
        if isinstance(feature, CategoricalFeature):
            lookup = feature.lookup()
            spelled = {v: lookup.get(v.strip().casefold()) for v in set(raw)}
            canonical = np.array(list(map(spelled.__getitem__, raw)), dtype=object)
            clean &= canonical != None  # noqa: E711 (element by element)
            columns[feature.name] = canonical
            continue
        values = numeric_cells(raw)
        if values is None:  # some cell is not a number as written: parse them one by one
            values = np.fromiter(
                (float(v) if NUMBER.fullmatch(v) else math.nan for v in raw), float, n
            )
        with np.errstate(invalid="ignore"):
            clean &= np.isfinite(values) & (feature.minimum <= values) & (values <= feature.maximum)
        columns[feature.name] = values
    return columns, clean


# Possessive: a cell that fails ends the match; earlier cells are never tried another way.
_NUMERIC_CELLS = re.compile(f"(?:{NUMBER.pattern}\x00)*+")
_JSON_NUMBER_CHARACTERS = b"0123456789.eE+- \t\r\n,"


def numeric_cells(raw: Sequence[str] | np.ndarray) -> np.ndarray | None:
    """Every cell parsed, if every cell is a number as written; else None (cell by cell)."""
    values = _json_numbers(raw)
    if values is not None:
        return values
    if not _NUMERIC_CELLS.fullmatch("\x00".join(raw) + "\x00"):
        return None
    try:
        return np.fromiter(map(float, raw), float, len(raw))
    except ValueError:  # a cell holding the separator itself
        return None


def _json_numbers(raw: Sequence[str] | np.ndarray) -> np.ndarray | None:
    """The cells read as one JSON array, when that is what they are: the common column of
    plain numbers, parsed many times faster than by float() cell by cell. A JSON number (with
    JSON's blanks around it) is a number as the schema writes it, and reads as the same float;
    cells holding nothing but number characters make an array of nothing but numbers."""
    text = ",".join(raw)
    try:
        if text.encode("ascii").translate(None, _JSON_NUMBER_CHARACTERS):
            return None
        parsed = orjson.loads(f"[{text}]")
    except (UnicodeEncodeError, orjson.JSONDecodeError):
        return None
    if len(parsed) != len(raw):  # a cell held a comma
        return None
    if "-0" in text:  # JSON reads "-0" as the integer 0; float() keeps the sign
        return np.fromiter(map(float, raw), float, len(raw))
    return np.array(parsed, dtype=float)


def predict_columns(
    model: LoadedModel, compiled: CompiledModel, columns: Mapping[str, Any]
) -> np.ndarray:
    table = compiled.table()
    if table is not None:
        return table.predict(columns)
    matrix = compiled.matrix(columns)
    estimator = compiled.estimator
    if compiled.kind == "linear":
        values = matrix @ np.asarray(estimator["coef"]) + estimator["intercept"]
    elif compiled.kind == "log_linear":
        scaled = (np.log(matrix) - np.asarray(estimator["mean"])) / np.asarray(estimator["scale"])
        values = np.exp(scaled @ np.asarray(estimator["coef"]) + estimator["intercept"])
    else:  # the boosted trees' own predictor, fed the matrix without the ColumnTransformer
        trees = model.pipeline[-1]
        with cores_for(len(matrix)):
            values = trees.predict(matrix)
    return np.asarray(values, dtype=float)
