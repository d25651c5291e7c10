"""How each model is trained: its candidates, compared by cross-validation, and its naive
baseline. One recipe per model of `shared.schema.MODELS`, under the same name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from shared.schema import CUSTOMER_NEEDS, MARKET_TREND, MODELS, CategoricalFeature, ModelSchema

SEED = 20261128
SEED_MODEL = "linear_regression"


@dataclass(frozen=True)
class Recipe:
    """How one model is trained: its schema, its candidates and its naive baseline."""

    name: str
    schema: ModelSchema
    time_ordered: bool
    candidates: Callable[[], dict[str, Pipeline]]
    naive: Callable[[pd.Series, pd.DataFrame], np.ndarray]
    naive_name: str


def _columns(schema: ModelSchema, *, scale: bool) -> ColumnTransformer:
    categorical = [f for f in schema.features if isinstance(f, CategoricalFeature)]
    numeric = [f.name for f in schema.features if not isinstance(f, CategoricalFeature)]
    steps: list[tuple[str, Any, list[str]]] = [
        (f.name, OneHotEncoder(categories=[list(f.categories)], handle_unknown="ignore"), [f.name])
        for f in categorical
    ]
    steps.append(("numeric", StandardScaler() if scale else "passthrough", numeric))
    return ColumnTransformer(steps, verbose_feature_names_out=False)


def _seed_model(schema: ModelSchema) -> Pipeline:
    return Pipeline([("features", _columns(schema, scale=False)), ("model", LinearRegression())])


def _boosting(schema: ModelSchema) -> Pipeline:
    model = HistGradientBoostingRegressor(random_state=SEED)
    return Pipeline([("features", _columns(schema, scale=False)), ("model", model)])


def customer_candidates() -> dict[str, Pipeline]:
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13))
    return {
        SEED_MODEL: _seed_model(CUSTOMER_NEEDS),
        "ridge": Pipeline([("features", _columns(CUSTOMER_NEEDS, scale=True)), ("model", ridge)]),
        "gradient_boosting": _boosting(CUSTOMER_NEEDS),
    }


def market_candidates() -> dict[str, Pipeline]:
    # Growth is multiplicative: a ridge on log features, predicting log sales, extrapolates.
    log_ridge = TransformedTargetRegressor(
        regressor=Pipeline(
            [
                ("log", FunctionTransformer(np.log, feature_names_out="one-to-one")),
                ("scale", StandardScaler()),
                ("ridge", RidgeCV(alphas=np.logspace(-4, 2, 13))),
            ]
        ),
        func=np.log,
        inverse_func=np.exp,
    )
    return {
        SEED_MODEL: _seed_model(MARKET_TREND),
        "log_ridge": Pipeline(
            [("features", _columns(MARKET_TREND, scale=False)), ("model", log_ridge)]
        ),
        "gradient_boosting": _boosting(MARKET_TREND),
    }


RECIPES: Mapping[str, Recipe] = {
    "customer_needs": Recipe(
        name="customer_needs",
        schema=MODELS["customer_needs"].schema,
        time_ordered=False,
        candidates=customer_candidates,
        naive=lambda fit_target, rows: np.full(len(rows), float(fit_target.mean())),
        naive_name="mean",
    ),
    "market_trend": Recipe(
        name="market_trend",
        schema=MODELS["market_trend"].schema,
        time_ordered=True,
        candidates=market_candidates,
        naive=lambda fit_target, rows: rows["sales"].to_numpy(dtype=float),
        naive_name="last_value",
    ),
}
