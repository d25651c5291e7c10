"""Evaluate a model's serving form (see models/compile.py) without scikit-learn or pandas.

Rows come in as canonical values (numbers as floats, categories as canonical strings), as
the validators produce them. One row costs microseconds in plain Python; batches go by
column with numpy, or through the lookup table for boosted trees.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared.once import once, once_per

if TYPE_CHECKING:
    from shared.predict._additive import Additive
    from shared.predict._tree_table import TreeTable
    from shared.store import LoadedModel

FORMAT = 1


@once_per
def serving_form(model: LoadedModel) -> CompiledModel | None:
    """The model's serving form, made once per loaded version; None when it has none that
    can be evaluated (the pipeline then answers)."""
    return _evaluator(model.serving)


def _evaluator(form: Mapping[str, Any] | None) -> CompiledModel | None:
    if form is None:
        return None
    try:
        return CompiledModel(form)
    except (KeyError, TypeError, ValueError):
        return None


class CompiledModel:
    def __init__(self, form: Mapping[str, Any]) -> None:
        if form.get("format") != FORMAT:
            raise ValueError(f"unknown serving form format {form.get('format')!r}")
        self.inputs = list(form["inputs"])
        self.estimator = dict(form["estimator"])
        self.kind = self.estimator["kind"]
        if self.kind == "trees":
            self.trees = [
                (t["feature"], t["threshold"], t["left"], t["right"], t["leaf"], t["value"])
                for t in self.estimator["trees"]
            ]
        elif self.kind not in ("linear", "log_linear"):
            raise ValueError(f"unknown estimator kind {self.kind!r}")
        link = self.estimator.get("link", "identity")
        if link not in ("identity", "log"):
            raise ValueError(f"unknown link {link!r}")
        self.log_link = link == "log"
        self.table = once(self._table)  # batches of trees: the ensemble as a lookup table
        self.additive = once(self._additive)  # single rows of trees that each use one input

    def _table(self) -> TreeTable | None:
        if self.kind != "trees":
            return None
        from shared.predict._tree_table import build  # numpy, batches only

        try:
            return build({"inputs": self.inputs, "estimator": self.estimator})
        except ValueError:  # not a partition of the grid: the trees' own predictor answers
            return None

    def _additive(self) -> Additive | None:
        if self.kind != "trees":
            return None
        from shared.predict._additive import build

        return build(self.inputs, self.estimator)

    def features(self, row: Mapping[str, Any]) -> list[float]:
        """The ColumnTransformer's output for one canonical row."""
        x: list[float] = []
        for spec in self.inputs:
            value = row[spec["feature"]]
            if spec["kind"] == "one_hot":
                x.extend(1.0 if value == category else 0.0 for category in spec["categories"])
            else:
                x.append((float(value) - spec["mean"]) / spec["scale"])
        return x

    def predict_one(self, row: Mapping[str, Any]) -> float:
        x = self.features(row)
        if self.kind == "linear":
            return _dot(self.estimator["coef"], x) + float(self.estimator["intercept"])
        if self.kind == "log_linear":
            scaled = [
                (math.log(v) - m) / s
                for v, m, s in zip(x, self.estimator["mean"], self.estimator["scale"], strict=True)
            ]
            return math.exp(
                _dot(self.estimator["coef"], scaled) + float(self.estimator["intercept"])
            )
        additive = self.additive()
        total = additive.raw(x) if additive is not None else self._walk(x)
        return math.exp(total) if self.log_link else total

    def _walk(self, x: Sequence[float]) -> float:
        """The summed trees for one row, walked down each tree in turn."""
        total = float(self.estimator["baseline"])
        for feature, threshold, left, right, leaf, value in self.trees:
            node = 0
            while not leaf[node]:
                node = left[node] if x[feature[node]] <= threshold[node] else right[node]
            total += value[node]
        return total

    def matrix(self, columns: Mapping[str, Any]) -> Any:
        """The ColumnTransformer's output for canonical columns, as a numpy matrix."""
        import numpy as np  # batches only

        parts = []
        for spec in self.inputs:
            column = columns[spec["feature"]]
            if spec["kind"] == "one_hot":
                values = np.asarray(column, dtype=object)
                parts += [(values == c).astype(float) for c in spec["categories"]]
            else:
                parts.append((np.asarray(column, dtype=float) - spec["mean"]) / spec["scale"])
        return np.column_stack(parts)

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[float]:
        return [self.predict_one(row) for row in rows]

    def predict_columns(self, columns: Mapping[str, Any], trees: Callable[[], Any]) -> Any:
        """Predictions for canonical columns, as a numpy array. `trees` gives the fitted
        ensemble, whose own predictor answers when the lookup table cannot be built."""
        import numpy as np  # batches only

        from shared.kernels import cores_for

        table = self.table()
        if table is not None:
            return table.predict(columns)
        matrix = self.matrix(columns)
        estimator = self.estimator
        if self.kind == "linear":
            values = matrix @ np.asarray(estimator["coef"]) + estimator["intercept"]
        elif self.kind == "log_linear":
            mean, scale = np.asarray(estimator["mean"]), np.asarray(estimator["scale"])
            scaled = (np.log(matrix) - mean) / scale
            values = np.exp(scaled @ np.asarray(estimator["coef"]) + estimator["intercept"])
        else:  # the boosted trees' own predictor, fed the matrix without the ColumnTransformer
            with cores_for(len(matrix)):
                values = trees().predict(matrix)
        return np.asarray(values, dtype=float)


def _dot(coef: Sequence[float], x: Sequence[float]) -> float:
    return math.fsum(c * v for c, v in zip(coef, x, strict=True))
