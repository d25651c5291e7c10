"""Batches scored column by column with numpy, when every value is clean.

The common batch, JSON instances with exactly the model's fields (or CSV rows whose model
columns are) with numbers in range and categories spelled as the schema allows, is turned
straight into the model's input matrix. Anything else returns None and goes the reference way
(pandas validation, which names every fault): this path never decides an error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shared.codecs import Table
from shared.compiled_model import CompiledModel
from shared.kernels import cores_for
from shared.model_store import LoadedModel
from shared.records import NUMBER
from shared.schema import CategoricalFeature


def clean_columns(
    objects: Sequence[Mapping[str, Any]], model: LoadedModel
) -> dict[str, Any] | None:
    """Canonical columns, or None if any value needs the reference validator."""
    names = model.schema.feature_names
    if any(len(item) != len(names) for item in objects):
        return None
    columns: dict[str, Any] = {}
    try:
        for feature in model.schema.features:
            raw = [item[feature.name] for item in objects]
            if isinstance(feature, CategoricalFeature):
                lookup = feature.lookup()
                canonical = [
                    lookup.get(v.strip().casefold()) if type(v) is str else None for v in raw
                ]
                if None in canonical:
                    return None
                columns[feature.name] = canonical
            else:
                if not all(type(v) is float or type(v) is int for v in raw):
                    return None
                values = np.asarray(raw, dtype=float)
                if not (
                    np.isfinite(values).all()
                    and feature.minimum <= values.min()
                    and values.max() <= feature.maximum
                ):
                    return None
                columns[feature.name] = values
    except (KeyError, OverflowError):
        return None
    return columns


def clean_text_columns(table: Table, model: LoadedModel) -> dict[str, Any] | None:
    """The model's columns of a CSV table, canonical, or None if any cell needs the reference."""
    if not table.records or not set(model.schema.feature_names) <= set(table.header):
        return None
    cells = table.columns()
    columns: dict[str, Any] = {}
    for feature in model.schema.features:
        raw = cells[feature.name]
        if isinstance(feature, CategoricalFeature):
            lookup = feature.lookup()
            canonical = [lookup.get(v.strip().casefold()) for v in raw]
            if None in canonical:
                return None
            columns[feature.name] = canonical
            continue
        values = numeric_cells(raw)
        if values is None or not (
            np.isfinite(values).all()
            and feature.minimum <= values.min()
            and values.max() <= feature.maximum
        ):
            return None
        columns[feature.name] = values
    return columns


_NUMERIC_CELLS = re.compile(f"(?:{NUMBER.pattern}\x00)*")


def numeric_cells(raw: Sequence[str] | np.ndarray) -> np.ndarray | None:
    """Every cell parsed, if every cell is a number as written; else None (cell by cell)."""
    if not _NUMERIC_CELLS.fullmatch("\x00".join(raw) + "\x00"):
        return None
    try:
        return np.fromiter(map(float, raw), float, len(raw))
    except ValueError:  # a cell holding the separator itself
        return None


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
