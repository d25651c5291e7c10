"""The lookup table of a boosted ensemble returns the ensemble's own floats."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.compile import NotCompilable, compile_pipeline, try_compile
from shared.predict import _tree_table as tree_table
from shared.predict._compiled import CompiledModel


def fitted(seed: int, categories: list[str], scale: bool, loss: str = "squared_error") -> Pipeline:
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
    target = target - target.min() + 1  # positive: a Poisson or gamma loss needs that
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
            ("trees", HistGradientBoostingRegressor(max_iter=40, random_state=seed, loss=loss)),
        ]
    )
    return pipeline.fit(frame, np.abs(target + rng.normal(0, 1, n)))


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


@pytest.mark.parametrize(("loss", "link"), [("squared_error", "identity"), ("poisson", "log")])
def test_the_serving_form_names_the_link_of_the_loss(loss, link):
    form = compile_pipeline(fitted(7, ["red", "green"], scale=False, loss=loss))

    assert form["estimator"]["link"] == link


@pytest.mark.parametrize("loss", ["poisson", "gamma"])
def test_a_log_link_table_returns_the_floats_of_the_ensemble(loss):
    categories = ["red", "green", "blue"]
    pipeline = fitted(8, categories, scale=True, loss=loss)
    table = tree_table.build(compile_pipeline(pipeline))
    frame = probes(8, categories)

    got = table.predict(as_columns(frame))

    np.testing.assert_allclose(got, pipeline.predict(frame), rtol=1e-15, atol=0)
    assert (got > 0).all()  # exp of the summed trees: never zero or below


def test_a_log_link_is_applied_by_record_and_by_column_alike():
    categories = ["red", "green"]
    pipeline = fitted(9, categories, scale=False, loss="poisson")
    compiled = CompiledModel(compile_pipeline(pipeline))
    frame = probes(9, [*categories, "blue"]).iloc[:300]
    wanted = pipeline.predict(frame)

    by_record = compiled.predict(frame.to_dict(orient="records"))
    by_column = compiled.predict_columns(as_columns(frame), lambda: pipeline[-1])

    np.testing.assert_allclose(by_record, wanted, rtol=1e-12, atol=0)
    np.testing.assert_allclose(by_column, wanted, rtol=1e-15, atol=0)


def test_without_a_table_the_trees_own_predictor_applies_the_log_link_too():
    pipeline = fitted(10, ["red", "green"], scale=False, loss="poisson")
    form = compile_pipeline(pipeline)
    first = form["estimator"]["trees"][0]
    first["value"][first["leaf"].index(True)] = float("nan")  # no table can be built
    compiled = CompiledModel(form)
    frame = probes(10, ["red", "green"]).iloc[:200]

    assert compiled.table() is None
    got = compiled.predict_columns(as_columns(frame), lambda: pipeline[-1])

    np.testing.assert_allclose(got, pipeline.predict(frame), rtol=1e-12, atol=0)


def test_a_form_without_a_link_is_read_as_identity_and_an_unknown_link_is_refused():
    form = compile_pipeline(fitted(11, ["red", "green"], scale=False))
    old = {**form, "estimator": {k: v for k, v in form["estimator"].items() if k != "link"}}
    frame = probes(11, ["red", "green"]).iloc[:50]

    assert CompiledModel(old).predict(frame.to_dict(orient="records")) == pytest.approx(
        CompiledModel(form).predict(frame.to_dict(orient="records")), rel=1e-15
    )
    with pytest.raises(ValueError, match="unknown link"):
        CompiledModel({**form, "estimator": {**form["estimator"], "link": "logit"}})


def test_a_loss_the_serving_form_has_no_link_for_is_not_compiled():
    pipeline = fitted(12, ["red", "green"], scale=False, loss="absolute_error")

    with pytest.raises(NotCompilable, match="absolute_error"):
        compile_pipeline(pipeline)
    assert try_compile(pipeline) is None


def additive(seed: int, scale: bool, loss: str = "squared_error") -> Pipeline:
    """An ensemble whose every tree splits on one input (interaction constraints)."""
    pipeline = fitted(seed, ["red", "green", "blue"], scale, loss)
    constraints = [[0, 1, 2], [3], [4]]  # the colour's one-hot columns, size, weight
    pipeline.set_params(trees__interaction_cst=constraints)
    frame = probes(seed, ["red", "green", "blue"]).iloc[:3000]
    frame = frame[frame["colour"] != "unseen"]
    frame = frame[(frame["size"].abs() < 1e200) & (frame["weight"].abs() < 1e200)]
    rng = np.random.default_rng(seed)
    return pipeline.fit(frame, rng.lognormal(3, 0.5, len(frame)) + frame["size"].clip(0, 60))


def row_by_row(form: dict[str, object], frame: pd.DataFrame) -> list[float]:
    model = CompiledModel(form)
    return [model.predict_one(row) for row in frame.to_dict(orient="records")]


@pytest.mark.parametrize(
    ("seed", "scale", "loss"), [(1, False, "squared_error"), (2, True, "poisson")]
)
def test_one_row_of_an_additive_ensemble_gets_the_very_float_of_the_ensemble(seed, scale, loss):
    pipeline = additive(seed, scale, loss)
    form = compile_pipeline(pipeline)
    frame = probes(seed + 10, ["red", "green", "blue"]).iloc[:1500]
    frame = frame[(frame["size"].abs() < 1e200) & (frame["weight"].abs() < 1e200)]

    model = CompiledModel(form)
    reader = model.additive()

    assert reader is not None
    xs = [model.features(row) for row in frame.to_dict(orient="records")]
    assert [reader.raw(x) for x in xs] == [model._walk(x) for x in xs]
    if loss == "squared_error":  # no link: the summed trees are scikit-learn's answer itself
        assert row_by_row(form, frame) == pipeline.predict(frame).tolist()
    else:  # exp of the same sum; math.exp and numpy's may differ in the last bit
        assert row_by_row(form, frame) == pytest.approx(pipeline.predict(frame), rel=1e-15)


def test_one_row_on_each_split_threshold_gets_the_very_float_of_the_walk():
    form = compile_pipeline(additive(3, scale=False))
    model = CompiledModel(form)
    reader = model.additive()
    assert reader is not None
    trees = form["estimator"]["trees"]
    edges = {
        t
        for tree in trees
        for t, leaf in zip(tree["threshold"], tree["leaf"], strict=True)
        if not leaf
    }

    for edge in sorted(edges):
        for value in (edge, np.nextafter(edge, -np.inf), np.nextafter(edge, np.inf)):
            for colour in ("red", "green", "blue", "unseen"):
                x = model.features({"colour": colour, "size": value, "weight": value})
                assert reader.raw(x) == model._walk(x)


def test_an_ensemble_whose_trees_mix_inputs_is_walked():
    form = compile_pipeline(fitted(8, ["red", "green"], scale=False))

    assert CompiledModel(form).additive() is None
    frame = probes(8, ["red", "green"]).iloc[:300]
    frame = frame[(frame["size"].abs() < 1e200) & (frame["weight"].abs() < 1e200)]
    assert (
        row_by_row(form, frame) == fitted(8, ["red", "green"], scale=False).predict(frame).tolist()
    )
