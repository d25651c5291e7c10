"""The market forecaster on the shipped US macro series: on a rolling-origin backtest it beats
the naive forecasts, with ARIMA reported beside it; it pickles, clones and serves as plain
numbers; and a file whose quarters do not run forward is refused with the line to fix."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from models import data
from models.compile import compile_pipeline
from models.forecasting import (
    GrowthModel,
    check_periods,
    forecast_scores,
    period_label,
    rolling_backtest,
)
from shared.predict._compiled import CompiledModel

FEATURES = ["sales", "population", "gdp"]
PERIODS = ("year", "quarter")
REPOSITORY = Path(__file__).resolve().parents[2]


def growth_pipeline(*, pandas_output: bool = False) -> Pipeline:
    columns = ColumnTransformer(
        [("numeric", "passthrough", FEATURES)], verbose_feature_names_out=False
    )
    if pandas_output:
        columns.set_output(transform="pandas")
    return Pipeline([("features", columns), ("model", GrowthModel())])


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    """The quarters whose next quarter is known: all but the last."""
    return data.macro().iloc[:-1]


@pytest.fixture(scope="module")
def fitted(history: pd.DataFrame) -> Pipeline:
    return growth_pipeline().fit(history[FEATURES], history["future_sales"])


@pytest.fixture(scope="module")
def backtest(history: pd.DataFrame) -> dict[str, Any]:
    periods = [period_label(y, q) for y, q in zip(history.year, history.quarter, strict=True)]
    return rolling_backtest(history[FEATURES], history["future_sales"], periods, growth_pipeline)


def test_the_growth_model_beats_drift_and_last_value_on_the_backtest(backtest):
    scores = backtest["scores"]

    assert scores["model"]["mape"] < scores["drift"]["mape"] < scores["last_value"]["mape"]
    assert scores["model"]["rmse"] < scores["drift"]["rmse"] < scores["last_value"]["rmse"]


def test_the_backtest_forecasts_the_last_forty_known_quarters(backtest):
    assert (backtest["origins"], backtest["first"], backtest["last"]) == (40, "1999Q3", "2009Q2")
    assert len(backtest["relative_errors"]) == 40
    assert max(abs(e) for e in backtest["relative_errors"]) < 0.05


def test_arima_with_drift_is_reported_beside_the_model(backtest):
    arima = backtest["scores"]["arima"]

    assert 0 < arima["mape"] < backtest["scores"]["last_value"]["mape"]
    assert arima["rmse"] > 0


def test_a_backtest_refuses_a_quarter_whose_next_one_is_not_known_yet():
    frame = data.macro()
    periods = [period_label(y, q) for y, q in zip(frame.year, frame.quarter, strict=True)]

    with pytest.raises(ValueError, match=r"target is missing in row 203 \(2009Q3\)"):
        rolling_backtest(frame[FEATURES], frame["future_sales"], periods, growth_pipeline)


def test_forecast_scores_are_mape_in_percent_and_rmse():
    assert forecast_scores([100.0, 200.0], [101.0, 198.0]) == {"mape": 1.0, "rmse": 1.581139}


def test_a_file_sorted_by_period_passes():
    check_periods(data.macro(), PERIODS)


def test_an_unsorted_file_is_refused_naming_the_line_and_how_to_sort_it():
    frame = data.macro()
    swapped = pd.concat([frame.iloc[:10], frame.iloc[[11, 10]], frame.iloc[12:]])

    with pytest.raises(ValueError, match=r"line 13 \(1961Q3\) comes after line 12 \(1961Q4\)"):
        check_periods(swapped, PERIODS)
    with pytest.raises(ValueError, match="sort the file by year, quarter"):
        check_periods(swapped, PERIODS)


def test_a_duplicated_period_is_refused_naming_both_lines():
    frame = data.macro()
    doubled = pd.concat([frame.iloc[:5], frame.iloc[[4]], frame.iloc[5:]])

    with pytest.raises(
        ValueError, match=r"line 7 repeats period 1960Q1 of line 6: .*each period once"
    ):
        check_periods(doubled, PERIODS)


def test_a_period_that_is_not_a_whole_number_is_refused_naming_the_line():
    frame = data.macro().astype({"quarter": object})
    frame.loc[3, "quarter"] = "Q4"

    with pytest.raises(ValueError, match="column quarter must hold whole numbers, but line 5"):
        check_periods(frame, PERIODS)


def test_a_missing_period_column_is_named():
    with pytest.raises(ValueError, match="has no quarter column"):
        check_periods(data.macro().drop(columns="quarter"), PERIODS)


def test_the_level_is_found_by_name_whatever_the_column_order(history, fitted):
    reordered = ["gdp", "sales", "population"]
    model = GrowthModel().fit(history[reordered], history["future_sales"])

    np.testing.assert_allclose(
        model.predict(history[reordered]), fitted.predict(history), rtol=1e-9, atol=0
    )
    assert model.level_index_ == 1


def test_a_pipeline_with_pandas_output_predicts_what_the_array_one_does(history, fitted):
    named = growth_pipeline(pandas_output=True).fit(history[FEATURES], history["future_sales"])

    np.testing.assert_allclose(named.predict(history), fitted.predict(history), rtol=1e-12)


def test_nonpositive_inputs_are_refused_at_fit_and_at_predict(history, fitted):
    zero_gdp = history[FEATURES].assign(gdp=history["gdp"].where(history.index != 3, 0.0))

    with pytest.raises(ValueError, match="every value must be > 0, but gdp is 0 in row 4"):
        GrowthModel().fit(zero_gdp, history["future_sales"])
    with pytest.raises(ValueError, match="every value must be > 0, but column 2 is 0 in row 4"):
        fitted.predict(zero_gdp)
    with pytest.raises(ValueError, match="the target is -1"):
        GrowthModel().fit(history[FEATURES], history["future_sales"].where(history.index != 0, -1))


def test_the_growth_model_round_trips_through_joblib(history, fitted):
    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)

    np.testing.assert_array_equal(joblib.load(buffer).predict(history), fitted.predict(history))


def test_the_growth_model_clones_with_its_parameters_and_refits_alike(history, fitted):
    model = GrowthModel(level="sales", alphas=(0.1, 1.0))

    assert clone(model).get_params() == {"level": "sales", "alphas": (0.1, 1.0)}
    refitted = clone(fitted).fit(history[FEATURES], history["future_sales"])
    np.testing.assert_array_equal(refitted.predict(history), fitted.predict(history))


def test_the_serving_form_predicts_what_the_pipeline_predicts(fitted):
    rows = data.macro()[FEATURES]
    compiled = CompiledModel(compile_pipeline(fitted))
    expected = fitted.predict(rows)

    one_by_one = [compiled.predict_one(row) for row in rows.to_dict(orient="records")]
    by_column = compiled.predict_columns({c: rows[c].to_numpy() for c in FEATURES}, lambda: None)

    assert compiled.kind == "log_linear"
    np.testing.assert_allclose(one_by_one, expected, rtol=1e-9, atol=0)
    np.testing.assert_allclose(by_column, expected, rtol=1e-9, atol=0)


def test_statsmodels_is_imported_only_by_the_arima_baseline():
    program = "import sys, models.forecasting; assert 'statsmodels' not in sys.modules"

    finished = subprocess.run(
        [sys.executable, "-c", program], cwd=REPOSITORY, timeout=120, capture_output=True
    )

    assert finished.returncode == 0, finished.stderr.decode()[-2000:]
