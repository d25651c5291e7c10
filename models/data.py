"""Training data: seeded synthetic customers and markets, and the shipped US macro series.

Customer ground truth (what the models try to recover):

    expected = 150
               + 900 * (1 - exp(-income / 60000))       income saturates
               + 500 * (1 - ((age - 45) / 55) ** 2)     spending peaks at 45, never negative
               + {female: 120, male: 0, other: 60}      gender offsets
    purchase_amount ~ Gamma(mean expected, sd 40 + income / 5000)   wider for higher incomes

Every expected amount over the valid ages (18-100) and incomes is at least 150, and the Gamma
draw is positive: a purchase amount is never negative, as in the data it stands for.

with the dirt real exports have: about 1% of cells missing, categories in mixed case and
spellings (" Female", "M", "man"), a few impossible ages and a few purchase outliers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATASETS = Path(__file__).resolve().parent / "datasets"
BUNDLED_CUSTOMERS = 20_000
SPELLINGS = {
    "female": ["female", "Female", "F", "f", " woman"],
    "male": ["male", "Male", "M", "m", "man "],
    "other": ["other", "Other", "X", "diverse"],
}


def default_data(name: str, rows: int | None) -> pd.DataFrame:
    """What `python -m models train NAME` trains on without --data: `rows` synthetic rows, or
    the bundled default data (what `regenerate` trains the bundled models on) when None."""
    if name == "customer_needs":
        return customers(rows or BUNDLED_CUSTOMERS)
    return markets(rows) if rows else macro()


def customer_truth(age: np.ndarray, gender: np.ndarray, income: np.ndarray) -> np.ndarray:
    """The expected purchase amount, without noise."""
    offset: np.ndarray = np.select([gender == "female", gender == "male"], [120.0, 0.0], 60.0)
    saturation = 900 * (1 - np.exp(-income / 60_000))
    truth: np.ndarray = 150 + saturation + 500 * (1 - ((age - 45) / 55) ** 2)
    return np.asarray(truth + offset, dtype=float)


def customer_noise_sd(income: np.ndarray) -> np.ndarray:
    """The spread of purchase amounts around their expected value."""
    return np.asarray(40 + income / 5_000, dtype=float)


def customers(rows: int, seed: int = 7, *, dirty: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 90, rows).round()
    gender = rng.choice(["female", "male", "other"], rows, p=[0.49, 0.49, 0.02])
    income = np.clip(rng.lognormal(10.8, 0.5, rows), 5_000, 2_000_000).round(-2)
    mean, sd = customer_truth(age, gender, income), customer_noise_sd(income)
    amount = rng.gamma((mean / sd) ** 2, sd**2 / mean).round(2)
    frame = pd.DataFrame(
        {"age": age, "gender": gender, "income": income, "purchase_amount": amount}
    )
    return _dirty(frame, rng) if dirty else frame


def _dirty(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    rows = len(frame)
    frame = frame.astype({"age": object, "gender": object, "income": object})
    pick = rng.random(rows)
    gender = frame["gender"].to_numpy(dtype=object)
    for category, spellings in SPELLINGS.items():
        chosen = np.asarray(spellings, dtype=object)[(pick * len(spellings)).astype(int)]
        gender = np.where(gender == category, chosen, gender)
    frame["gender"] = gender
    for column in ("age", "gender", "income"):
        frame.loc[rng.random(rows) < 0.01, column] = None
    frame.loc[rng.random(rows) < 0.001, "age"] = 150
    outliers = rng.random(rows) < 0.002
    frame.loc[outliers, "purchase_amount"] = frame.loc[outliers, "purchase_amount"] * 50
    return frame


def macro() -> pd.DataFrame:
    """US quarterly macro data 1959Q1-2009Q3 (public domain; see datasets/README.md)."""
    return pd.read_csv(DATASETS / "macrodata.csv")


def markets(rows: int, seed: int = 11) -> pd.DataFrame:
    """Synthetic market rows in the macro series' units, for scale tests: any number of rows,
    one quarter each from 1900Q1 on (synthetic: the quarters do not follow one another)."""
    rng = np.random.default_rng(seed)
    quarter = np.arange(rows)
    sales = rng.uniform(1_500, 12_000, rows)
    gdp = sales * rng.uniform(1.35, 1.65, rows)
    population = rng.uniform(170, 320, rows)
    growth = 0.004 + 0.01 * (gdp / sales - 1.5) + rng.normal(0, 0.006, rows)
    return pd.DataFrame(
        {
            "year": 1900 + quarter // 4,
            "quarter": quarter % 4 + 1,
            "sales": sales.round(3),
            "population": population.round(3),
            "gdp": gdp.round(3),
            "future_sales": (sales * (1 + growth)).round(3),
        }
    )
