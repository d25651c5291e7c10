"""The serving form of a trained pipeline: its arithmetic as plain numbers, no pickle.

Written into metadata.json at training time, so a function can answer without importing
scikit-learn or pandas; shared/predict/_compiled.py evaluates it, and tests hold it to the
pipeline's own predictions within 1e-9 relative. Pipelines it cannot express get no serving
form and are served by scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, Ridge, RidgeCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from models.forecasting import GrowthModel

FORMAT = 1


class NotCompilable(ValueError):
    """The pipeline has a step the serving form cannot express."""


def compile_pipeline(pipeline: Pipeline) -> dict[str, Any]:
    if len(pipeline) != 2 or not isinstance(pipeline[0], ColumnTransformer):
        raise NotCompilable("expected ColumnTransformer followed by an estimator")
    return {
        "format": FORMAT,
        "inputs": _inputs(pipeline[0]),
        "estimator": _estimator(pipeline[-1]),
    }


def try_compile(pipeline: Pipeline) -> dict[str, Any] | None:
    try:
        return compile_pipeline(pipeline)
    except NotCompilable:
        return None


def _inputs(columns: ColumnTransformer) -> list[dict[str, Any]]:
    inputs: list[dict[str, Any]] = []
    for _, transformer, names in columns.transformers_:
        if transformer == "drop" or not len(names):
            continue
        if isinstance(transformer, OneHotEncoder):
            if transformer.drop is not None or len(names) != 1:
                raise NotCompilable("one-hot encoders must encode one column and drop none")
            categories = [str(c) for c in transformer.categories_[0]]
            inputs.append({"feature": names[0], "kind": "one_hot", "categories": categories})
        elif transformer == "passthrough" or (
            isinstance(transformer, FunctionTransformer) and transformer.func is None
        ):
            inputs += [{"feature": n, "kind": "number", "mean": 0.0, "scale": 1.0} for n in names]
        elif isinstance(transformer, StandardScaler):
            means = transformer.mean_ if transformer.with_mean else np.zeros(len(names))
            scales = transformer.scale_ if transformer.with_std else np.ones(len(names))
            inputs += [
                {"feature": n, "kind": "number", "mean": float(m), "scale": float(s)}
                for n, m, s in zip(names, means, scales, strict=True)
            ]
        else:
            raise NotCompilable(f"unsupported transformer {type(transformer).__name__}")
    return inputs


def _estimator(estimator: Any) -> dict[str, Any]:
    if isinstance(estimator, LinearRegression | Ridge | RidgeCV):
        return _linear(estimator)
    if isinstance(estimator, TransformedTargetRegressor):
        return _log_linear(estimator)
    if isinstance(estimator, GrowthModel):
        return _growth(estimator)
    if isinstance(estimator, HistGradientBoostingRegressor):
        return _trees(estimator)
    raise NotCompilable(f"unsupported estimator {type(estimator).__name__}")


def _linear(estimator: Any) -> dict[str, Any]:
    return {
        "kind": "linear",
        "coef": [float(c) for c in np.ravel(estimator.coef_)],
        "intercept": float(np.ravel(estimator.intercept_)[0])
        if np.ndim(estimator.intercept_)
        else float(estimator.intercept_),
    }


def _log_linear(estimator: TransformedTargetRegressor) -> dict[str, Any]:
    """exp(linear((log(x) - mean) / scale)): the market's ridge on log features."""
    inner = estimator.regressor_
    if (
        estimator.func is not np.log
        or estimator.inverse_func is not np.exp
        or not isinstance(inner, Pipeline)
        or len(inner) != 3
        or not isinstance(inner[0], FunctionTransformer)
        or inner[0].func is not np.log
        or not isinstance(inner[1], StandardScaler)
    ):
        raise NotCompilable("only log -> scale -> linear -> exp is supported")
    return {
        "kind": "log_linear",
        "mean": [float(m) for m in inner[1].mean_],
        "scale": [float(s) for s in inner[1].scale_],
        **{k: v for k, v in _linear(inner[2]).items() if k != "kind"},
    }


def _growth(model: GrowthModel) -> dict[str, Any]:
    """The market forecaster is log-linear in its raw inputs: nothing to centre or scale."""
    coef, intercept = model.log_coefficients()
    return {
        "kind": "log_linear",
        "mean": [0.0] * len(coef),
        "scale": [1.0] * len(coef),
        "coef": coef,
        "intercept": intercept,
    }


def _trees(estimator: HistGradientBoostingRegressor) -> dict[str, Any]:
    if estimator.n_trees_per_iteration_ != 1:
        raise NotCompilable("only single-output gradient boosting is supported")
    trees = []
    for (predictor,) in estimator._predictors:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise NotCompilable("native categorical splits are not supported")
        trees.append(
            {
                "feature": nodes["feature_idx"].tolist(),
                "threshold": nodes["num_threshold"].tolist(),
                "missing_left": nodes["missing_go_to_left"].astype(bool).tolist(),
                "left": nodes["left"].tolist(),
                "right": nodes["right"].tolist(),
                "leaf": nodes["is_leaf"].astype(bool).tolist(),
                "value": nodes["value"].tolist(),
            }
        )
    link = {"squared_error": "identity", "poisson": "log", "gamma": "log"}.get(str(estimator.loss))
    if link is None:
        raise NotCompilable(f"unsupported boosting loss {estimator.loss!r}")
    return {
        "kind": "trees",
        "link": link,  # "log": the trees sum to the log of the prediction
        "baseline": float(np.ravel(estimator._baseline_prediction)[0]),
        "trees": trees,
    }
