"""How each model is trained: its candidates, compared by cross-validation, its naive
baseline, and what its interval widths follow. One recipe per model of `shared.schema.MODELS`,
under the same name.

Candidates take the features to leave out (`--exclude-features`): those get no column in the
pipeline, so the model cannot use them, though requests still send them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, RidgeCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from models.forecasting import GrowthModel
from shared.schema import CUSTOMER_NEEDS, MARKET_TREND, MODELS, CategoricalFeature, ModelSchema

SEED = 20261128
SEED_MODEL = "linear_regression"
OUT_OF_SCOPE = (
    "Not for decisions about individuals' credit, insurance, employment, housing or the prices "
    "they are offered; not for rows outside the training range without review (answers flag "
    "them); not a causal model: a feature's contribution is not the effect of changing it."
)


Exclude = Sequence[str]


@dataclass(frozen=True)
class Recipe:
    """How one model is trained.

    `baseline`: the seed's LinearRegression, always measured beside the winner (for the
    customer model it is also a candidate; a forecaster's candidates all predict growth).
    `scale_model`: what learns the size of the winner's residuals per row (its intervals'
    widths follow it); `scale_feature` instead: the feature they are proportional to.
    `refit_on_all`: the published model is refit on every row after it is measured.
    """

    name: str
    schema: ModelSchema
    time_ordered: bool
    candidates: Callable[[Exclude], dict[str, Pipeline]]
    baseline: Callable[[Exclude], Pipeline]
    naive: Callable[[pd.Series, pd.DataFrame], np.ndarray]
    naive_name: str
    provenance: str
    intended_use: str
    scale_model: Callable[[Exclude], Pipeline | None] = lambda exclude: None
    scale_feature: str | None = None
    refit_on_all: bool = False


def _columns(schema: ModelSchema, *, scale: bool, exclude: Exclude = ()) -> ColumnTransformer:
    used = [f for f in schema.features if f.name not in exclude]
    categorical = [f for f in used if isinstance(f, CategoricalFeature)]
    numeric = [f.name for f in used if not isinstance(f, CategoricalFeature)]
    steps: list[tuple[str, Any, list[str]]] = [
        (f.name, OneHotEncoder(categories=[list(f.categories)], handle_unknown="ignore"), [f.name])
        for f in categorical
    ]
    steps.append(("numeric", StandardScaler() if scale else "passthrough", numeric))
    return ColumnTransformer(steps, verbose_feature_names_out=False)


def _seed_model(schema: ModelSchema, exclude: Exclude = ()) -> Pipeline:
    columns = _columns(schema, scale=False, exclude=exclude)
    return Pipeline([("features", columns), ("model", LinearRegression())])


def _boosting(schema: ModelSchema, exclude: Exclude, **parameters: Any) -> Pipeline:
    model = HistGradientBoostingRegressor(random_state=SEED, **parameters)
    columns = _columns(schema, scale=False, exclude=exclude)
    return Pipeline([("features", columns), ("model", model)])


def customer_candidates(exclude: Exclude = ()) -> dict[str, Pipeline]:
    ridge = RidgeCV(alphas=np.logspace(-3, 3, 13))
    scaled = _columns(CUSTOMER_NEEDS, scale=True, exclude=exclude)
    return {
        SEED_MODEL: _seed_model(CUSTOMER_NEEDS, exclude),
        "ridge": Pipeline([("features", scaled), ("model", ridge)]),
        # A log link: never a negative amount, and multiplicative effects come naturally.
        "gradient_boosting": _boosting(CUSTOMER_NEEDS, exclude, loss="poisson"),
        # Effects that add up, one feature at a time: less variance where rows are few.
        "additive_boosting": _boosting(
            CUSTOMER_NEEDS,
            exclude,
            interaction_cst="no_interactions",
            learning_rate=0.1,
            max_iter=300,
            min_samples_leaf=50,
            early_stopping=True,  # as on 10,000 rows and more; small files too stop early
        ),
    }


def residual_scale(exclude: Exclude = ()) -> Pipeline:
    """A linear model of the size of a customer's residual: wider intervals where the
    amounts spread more (the spread grows with income), and it extrapolates that trend."""
    return _seed_model(CUSTOMER_NEEDS, exclude)


def market_candidates(exclude: Exclude = ()) -> dict[str, Pipeline]:
    if "sales" in exclude:
        raise ValueError("sales is the level the market forecast grows from; keep it")
    columns = _columns(MARKET_TREND, scale=False, exclude=exclude)
    return {
        # Next quarter's growth from this quarter's ratios: it forecasts on any scale.
        "growth_ridge": Pipeline([("features", columns), ("model", GrowthModel(level="sales"))]),
    }


RECIPES: Mapping[str, Recipe] = {
    "customer_needs": Recipe(
        name="customer_needs",
        schema=MODELS["customer_needs"].schema,
        time_ordered=False,
        candidates=customer_candidates,
        baseline=lambda exclude: _seed_model(CUSTOMER_NEEDS, exclude),
        naive=lambda fit_target, rows: np.full(len(rows), float(fit_target.mean())),
        naive_name="mean",
        provenance=(
            "synthetic: customers drawn by models/data.py (a demonstration; retrain on real "
            "data before use)"
        ),
        intended_use=(
            "Planning marketing for groups of customers: which segments are likely to spend "
            "more, with an interval for each estimate."
        ),
        scale_model=residual_scale,
    ),
    "market_trend": Recipe(
        name="market_trend",
        schema=MODELS["market_trend"].schema,
        time_ordered=True,
        candidates=market_candidates,
        baseline=lambda exclude: _seed_model(MARKET_TREND, exclude),
        naive=lambda fit_target, rows: rows["sales"].to_numpy(dtype=float),
        naive_name="last_value",
        provenance=(
            "US quarterly macro data 1959Q1-2009Q3 (public domain, FRED via statsmodels; "
            "models/datasets/README.md)"
        ),
        intended_use=(
            "A one-quarter-ahead forecast of a market's sales from this quarter's sales, "
            "population and GDP, with an interval relative to the level."
        ),
        scale_feature="sales",
        refit_on_all=True,
    ),
}
