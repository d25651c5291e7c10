"""Seeded synthetic data for both models, so training runs anywhere with no downloads."""

from __future__ import annotations

import numpy as np
import pandas as pd


def customers(rows: int, seed: int = 7) -> pd.DataFrame:
    """Customers with a purchase amount that peaks in middle age and saturates with income."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 90, rows).round()
    gender = rng.choice(["female", "male", "other"], rows, p=[0.49, 0.49, 0.02])
    income = np.clip(rng.lognormal(10.8, 0.5, rows), 5_000, 2_000_000).round(-2)
    offset = np.select([gender == "female", gender == "male"], [120.0, 0.0], 60.0)
    amount = (
        400
        + 900 * (1 - np.exp(-income / 60_000))
        - 0.6 * (age - 45) ** 2
        + offset
        + rng.normal(0, 40 + income / 5_000, rows)
    )
    return pd.DataFrame(
        {"age": age, "gender": gender, "income": income, "purchase_amount": amount.round(2)}
    )


def market(quarters: int, seed: int = 11) -> pd.DataFrame:
    """A growing economy: sales follow GDP and population with noise; target is next quarter."""
    rng = np.random.default_rng(seed)
    gdp = 2_700 * np.cumprod(1 + rng.normal(0.008, 0.009, quarters + 1))
    population = 177_000 * np.cumprod(np.full(quarters + 1, 1.0025))
    sales = 0.62 * gdp + 0.002 * population + rng.normal(0, 20, quarters + 1)
    return pd.DataFrame(
        {
            "sales": sales[:-1].round(3),
            "population": population[:-1].round(3),
            "gdp": gdp[:-1].round(3),
            "future_sales": sales[1:].round(3),
        }
    )
