"""The market forecaster: next quarter's sales as this quarter's, grown at a predicted rate.

Sales, population and GDP grow together, so a regression on their levels extrapolates poorly
once sales pass every level history has seen. GrowthModel instead regresses the log growth
log(future / sales) on how far each other series stands from sales, log(x / sales): ratios that
stay within the range history has already covered. The model stays exactly log-linear in its
raw inputs, so models/compile.py can give it a serving form.

rolling_backtest holds a model to the forecasts one would make without it, on the same origins
and each fitted only on what was known then: the last value, the drift (the average growth so
far) and ARIMA(1, 1, 0) with drift on log sales, the statistical baseline, from statsmodels.
check_periods makes "what was known then" mean something: the periods of a file must run
forward, each once.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import RidgeCV
from sklearn.utils.validation import check_is_fitted, validate_data

Floats = npt.NDArray[np.float64]

DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-4, 3, 20))
BACKTEST_ORIGINS = 40
FIRST_DATA_LINE = 2  # a CSV's line 1 is its header
ARIMA_ORDER = (1, 1, 0)
# Differencing (d = 1) removes a constant, so statsmodels refuses trend "c" here; a linear trend
# in log sales is what survives as a constant growth of the differences: the drift.
ARIMA_TREND = "t"


class Regressor(Protocol):
    """What the backtest refits at each origin: a GrowthModel, or a pipeline around one."""

    def fit(self, X: Any, y: Any) -> Any: ...

    def predict(self, X: Any) -> Any: ...


class GrowthModel(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Predicts `level` times exp(a ridge's prediction of the log growth log(y / level)).

    The ridge sees log(x / level) for every other column x, in X's column order. Columns are
    found by name when X has names (a DataFrame, or a ColumnTransformer set to
    `set_output(transform="pandas")`). A ColumnTransformer's default output is a bare array
    without names: the level is then its first column, as the market schema lists sales first.
    Fitting keeps the level's position (`level_index_`), so predict reads columns by position.

    The model works on logs, so every input and target must be > 0; anything else is a
    ValueError naming the column, at fit and at predict alike.
    """

    def __init__(self, level: str = "sales", alphas: tuple[float, ...] = DEFAULT_ALPHAS) -> None:
        self.level = level
        self.alphas = alphas

    def fit(self, X: Any, y: Any) -> GrowthModel:
        values, target = validate_data(self, X, y, dtype=np.float64, y_numeric=True)
        if values.shape[1] < 2:
            raise ValueError("GrowthModel needs at least one column besides the level")
        self.level_index_ = self._find_level()
        _require_positive(values, self._column_names())
        _require_positive(np.reshape(target, (-1, 1)), ["the target"])
        growth = np.log(target) - np.log(values[:, self.level_index_])
        self.ridge_ = RidgeCV(alphas=self.alphas).fit(self._log_ratios(values), growth)
        return self

    def predict(self, X: Any) -> Floats:
        check_is_fitted(self, "ridge_")
        values = validate_data(self, X, reset=False, dtype=np.float64)
        _require_positive(values, self._column_names())
        growth = self.ridge_.predict(self._log_ratios(values))
        return np.asarray(values[:, self.level_index_] * np.exp(growth), dtype=np.float64)

    def log_coefficients(self) -> tuple[list[float], float]:
        """(coef, intercept) with log(prediction) = intercept + sum(coef[i] * log(X[:, i])).

        log y = a + sum_c b_c (log x_c - log level) + log level, so the level's coefficient
        is 1 - sum_c b_c: the model's whole arithmetic, for its serving form.
        """
        check_is_fitted(self, "ridge_")
        slopes = np.ravel(self.ridge_.coef_)
        coef = np.insert(slopes, self.level_index_, 1.0 - slopes.sum())
        return [float(c) for c in coef], float(self.ridge_.intercept_)

    def _find_level(self) -> int:
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return 0
        if self.level not in list(names):
            raise ValueError(f"GrowthModel's level {self.level!r} is not among {list(names)}")
        return list(names).index(self.level)

    def _column_names(self) -> list[str]:
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(n) for n in names]
        return [f"column {i}" for i in range(self.n_features_in_)]

    def _log_ratios(self, values: Floats) -> Floats:
        logs = np.log(values)
        others = np.delete(logs, self.level_index_, axis=1)
        return np.asarray(others - logs[:, [self.level_index_]], dtype=np.float64)


def _require_positive(values: Floats, names: Sequence[str]) -> None:
    rows, columns = np.nonzero(~(values > 0))
    if len(rows):
        row, column = int(rows[0]), int(columns[0])
        raise ValueError(
            f"the market forecaster works on logs, so every value must be > 0, but "
            f"{names[column]} is {values[row, column]:g} in row {row + 1} of {len(values)}"
        )


def period_label(year: int, quarter: int) -> str:
    """A quarter as analysts write it: period_label(1999, 3) == "1999Q3"."""
    return f"{int(year)}Q{int(quarter)}"


def check_periods(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    """Refuses a file whose periods do not run forward, each once: a backtest of it would
    fit on the future. Lines are numbered as in the CSV (line 2 is the first data row)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(
            f"the file needs the period columns {', '.join(columns)}, "
            f"but has no {', '.join(missing)} column"
        )
    keys = list(zip(*(_whole_numbers(frame[c], c) for c in columns), strict=True))
    seen: dict[tuple[int, ...], int] = {}
    for position, key in enumerate(keys):
        line = position + FIRST_DATA_LINE
        if key in seen:
            raise ValueError(
                f"line {line} repeats period {_period(key, columns)} of line {seen[key]}: "
                "the file must list each period once"
            )
        if position and key < keys[position - 1]:
            raise ValueError(
                f"line {line} ({_period(key, columns)}) comes after line {line - 1} "
                f"({_period(keys[position - 1], columns)}): "
                f"sort the file by {', '.join(columns)}, oldest first"
            )
        seen[key] = line


def _whole_numbers(values: pd.Series, column: str) -> list[int]:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    wrong = np.flatnonzero(~np.isfinite(numbers) | (np.mod(numbers, 1) != 0))
    if len(wrong):
        position = int(wrong[0])
        raise ValueError(
            f"column {column} must hold whole numbers, but line {position + FIRST_DATA_LINE} "
            f"has {values.iloc[position]!r}: write each period as whole numbers (1999, 3)"
        )
    return [int(n) for n in numbers]


def _period(key: tuple[int, ...], columns: Sequence[str]) -> str:
    if tuple(columns) == ("year", "quarter"):
        return period_label(*key)
    return ", ".join(f"{c} {v}" for c, v in zip(columns, key, strict=True))


def rolling_backtest(
    features: pd.DataFrame,
    target: pd.Series,
    periods: Sequence[str],
    make_model: Callable[[], Regressor],
    level: str = "sales",
    origins: int = BACKTEST_ORIGINS,
) -> dict[str, Any]:
    """One-step forecasts from each of the last `origins` rows, every forecaster fitted only on
    the rows before it, as the model would have been in production; target[t] is what follows
    row t. The model is scored beside the last value, the drift and ARIMA on the same origins.
    """
    sales = features[level].to_numpy(dtype=np.float64)
    actual = target.to_numpy(dtype=np.float64, na_value=np.nan)
    _check_history(sales, actual, periods, origins)
    _require_positive(np.column_stack([sales, actual]), [level, "the target"])
    first = len(features) - origins
    rows = range(first, len(features))
    forecasts = {
        "model": np.array([_model_forecast(make_model, features, target, t) for t in rows]),
        "last_value": sales[first:],
        "drift": np.array([_drift_forecast(sales, actual, t) for t in rows]),
        "arima": np.array([arima_forecast(sales[: t + 1]) for t in rows]),
    }
    truth = actual[first:]
    relative_errors = (truth - forecasts["model"]) / sales[first:]
    return {
        "origins": origins,
        "first": periods[first],
        "last": periods[-1],
        "scores": {name: forecast_scores(truth, forecast) for name, forecast in forecasts.items()},
        "relative_errors": [round(float(e), 8) for e in relative_errors],
    }


def _check_history(sales: Floats, target: Floats, periods: Sequence[str], origins: int) -> None:
    if not len(sales) == len(target) == len(periods):
        raise ValueError("features, target and periods must have one entry per row")
    if not 0 < origins < len(sales) - 1:
        raise ValueError(f"{origins} origins need more than {origins + 1} rows of history")
    missing = np.flatnonzero(np.isnan(target))
    if len(missing):
        raise ValueError(
            f"the target is missing in row {missing[0] + 1} ({periods[missing[0]]}): "
            "leave out the rows whose next period is not known yet"
        )


def forecast_scores(actual: npt.ArrayLike, forecast: npt.ArrayLike) -> dict[str, float]:
    """MAPE in percent, forecasting's usual yardstick, and the RMSE training reports, rounded to
    6 decimals as the reports keep them."""
    truth = np.asarray(actual, dtype=np.float64)
    errors = truth - np.asarray(forecast, dtype=np.float64)
    return {
        "mape": round(float(np.mean(np.abs(errors / truth)) * 100), 6),
        "rmse": round(float(np.sqrt(np.mean(errors**2))), 6),
    }


def _model_forecast(
    make_model: Callable[[], Regressor], features: pd.DataFrame, target: pd.Series, row: int
) -> float:
    model = make_model()
    model.fit(features.iloc[:row], target.iloc[:row])
    return float(np.ravel(model.predict(features.iloc[[row]]))[0])


def _drift_forecast(sales: Floats, target: Floats, row: int) -> float:
    growth = np.mean(np.log(target[:row] / sales[:row]))
    return float(sales[row] * np.exp(growth))


def arima_forecast(sales: Floats) -> float:
    """The value after the last of `sales`, from ARIMA(1, 1, 0) with drift on their logs."""
    try:
        from statsmodels.tools.sm_exceptions import (  # type: ignore[import-untyped]
            ConvergenceWarning,
            ValueWarning,
        )
        from statsmodels.tsa.arima.model import ARIMA  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ImportError(
            "the ARIMA baseline of the market backtest needs statsmodels: "
            "pip install -r requirements.txt"
        ) from exc
    with warnings.catch_warnings():
        # L-BFGS now and then stops at its precision limit a hair from the optimum (the
        # forecast then agrees with a Nelder-Mead fit to 1e-5): the baseline still stands.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", ValueWarning)
        fitted = ARIMA(np.log(sales), order=ARIMA_ORDER, trend=ARIMA_TREND).fit()
    return float(np.exp(fitted.forecast(1)[0]))
