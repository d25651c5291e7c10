"""Small real models, trained once per test session by the product's own `train`.

Only the seed candidate (a LinearRegression pipeline) is offered to cross-validation: the
boosted candidate takes seconds to fit, and these tests are about serving, not selection.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import pandas as pd

    from models.training import Trained

CREATED = datetime(2026, 1, 1, tzinfo=UTC)


def train_fast(name: str, rows: pd.DataFrame, version: str) -> Trained:
    # Imported here so that the files which train nothing do not pay for scikit-learn.
    from models.recipes import RECIPES, SEED_MODEL
    from models.training import train

    recipe = RECIPES[name]
    seed_only = dataclasses.replace(
        recipe, candidates=lambda exclude: {SEED_MODEL: recipe.baseline(exclude)}
    )
    return train(seed_only, rows, version, CREATED)


@pytest.fixture(scope="session")
def customer_needs_v1() -> Trained:
    from models import data

    return train_fast("customer_needs", data.customers(200), "v1")


@pytest.fixture(scope="session")
def customer_needs_v2() -> Trained:
    from models import data

    return train_fast("customer_needs", data.customers(200, seed=8), "v2")


@pytest.fixture(scope="session")
def market_trend_v1() -> Trained:
    from models import data

    return train_fast("market_trend", data.markets(200), "v1")
