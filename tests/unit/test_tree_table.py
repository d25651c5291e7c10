"""The lookup table of a boosted ensemble returns the ensemble's own floats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.compile import compile_pipeline
from shared.predict import _tree_table as tree_table
from shared.predict._compiled import CompiledModel


def fitted(seed: int, categories: list[str], scale: bool) -> Pipeline:
    rng = np.random.default_rng(seed)
    n = 3000
    frame = pd.DataFrame(
        {
            "colour": rng.choice(categories, n),
            "size": rng.integers(0, 60, n).astype(float),
            "weight": rng.lognormal(3, 1, n).round(1),
        }
    )
    target = frame["size"] * (frame["colour"] == categories[0]) + np.log(frame["weight"]) * 7
    numbers = StandardScaler() if scale else "passthrough"
    pipeline = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [
                        ("colour", OneHotEncoder(handle_unknown="ignore"), ["colour"]),
                        ("numbers", numbers, ["size", "weight"]),
                    ]
                ),
            ),
            ("trees", HistGradientBoostingRegressor(max_iter=40, random_state=seed)),
        ]
    )
    return pipeline.fit(frame, target + rng.normal(0, 1, n))


def probes(seed: int, categories: list[str]) -> pd.DataFrame:
    """Random rows, rows on every value seen in training, and rows far outside it."""
    rng = np.random.default_rng(seed + 100)
    n = 5000
    return pd.DataFrame(
        {
            "colour": rng.choice([*categories, "unseen"], n),
            "size": np.concatenate([rng.uniform(-10, 70, n - 62), np.arange(-1, 60), [1e300]]),
            "weight": np.concatenate([rng.lognormal(3, 1.5, n - 2).round(2), [0.0, -1e300]]),
        }
    )


def as_columns(frame: pd.DataFrame) -> dict[str, object]:
    return {
        "colour": frame["colour"].tolist(),
        "size": frame["size"].to_numpy(),
        "weight": frame["weight"].to_numpy(),
    }


@pytest.mark.parametrize(("seed", "scale"), [(1, False), (2, True), (3, True)])
def test_the_table_returns_the_very_floats_of_the_ensemble(seed, scale):
    categories = ["red", "green", "blue"]
    pipeline = fitted(seed, categories, scale)
    table = tree_table.build(compile_pipeline(pipeline))
    frame = probes(seed, categories)

    got = table.predict(as_columns(frame))

    np.testing.assert_array_equal(got, pipeline.predict(frame))


def test_a_category_the_model_never_saw_is_looked_up_as_none_of_them():
    pipeline = fitted(4, ["red", "green"], scale=False)
    table = tree_table.build(compile_pipeline(pipeline))
    frame = probes(4, ["red", "green", "blue"])

    np.testing.assert_array_equal(table.predict(as_columns(frame)), pipeline.predict(frame))


def test_a_grid_larger_than_the_limit_gets_no_table():
    form = compile_pipeline(fitted(5, ["red", "green"], scale=False))

    assert tree_table.build(form, max_cells=100) is None
    assert tree_table.build(form, max_cells=10**6) is not None


def test_a_form_whose_leaves_leave_cells_unanswered_is_refused():
    form = compile_pipeline(fitted(6, ["red", "green"], scale=False))
    first = form["estimator"]["trees"][0]
    leaf = first["leaf"].index(True)
    first["value"][leaf] = float("nan")

    with pytest.raises(ValueError, match="partition"):
        tree_table.build(form)
    assert CompiledModel(form).table() is None  # and the trees' own predictor answers


def test_other_estimators_have_no_table():
    form = {
        "format": 1,
        "inputs": [{"feature": "x", "kind": "number", "mean": 0.0, "scale": 1.0}],
        "estimator": {"kind": "linear", "coef": [2.0], "intercept": 1.0},
    }

    assert CompiledModel(form).table() is None
