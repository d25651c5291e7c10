"""Training picks honestly, measures on held-out rows, and carries what serving needs."""

from __future__ import annotations

import dataclasses
import functools
import io
from datetime import UTC, datetime

import joblib
import numpy as np
import pandas as pd
import pytest

from models import data
from models.__main__ import main
from models.calibrating import bounds, coverage
from models.groups import conditional_coverage
from models.recipes import RECIPES, SEED_MODEL
from models.report import summary
from models.training import Cleaned, Trained, clean, split_rows, train
from shared.predict._explain import shapley
from shared.schema import CUSTOMER_NEEDS
from shared.store import LocalFolder, load_current

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def customer_model() -> Trained:
    return train(RECIPES["customer_needs"], data.customers(20_000, seed=3), "v", CREATED)


@pytest.fixture(scope="module")
def market_model() -> Trained:
    return train(RECIPES["market_trend"], data.macro(), "v", CREATED)


def pipeline(trained: Trained):
    return joblib.load(io.BytesIO(trained.artifact))


def test_customer_model_beats_the_seed_linear_regression_where_truth_is_not_linear(
    customer_model: Trained,
):
    held_out = customer_model.metadata["metrics"]["held_out"]

    assert customer_model.metadata["estimator"] != SEED_MODEL
    assert held_out["chosen"]["rmse"] < 0.6 * held_out[SEED_MODEL]["rmse"]
    assert held_out["chosen"]["rmse"] < held_out["mean"]["rmse"]


def test_customer_model_beats_the_seed_on_fresh_data_too(customer_model: Trained):
    fresh = data.customers(5_000, seed=99, dirty=False)
    features, target = fresh[["age", "gender", "income"]], fresh["purchase_amount"]
    seed = RECIPES["customer_needs"].baseline(()).fit(features, target)
    fresh_test = data.customers(5_000, seed=100, dirty=False)

    chosen_error = np.abs(pipeline(customer_model).predict(fresh_test) - fresh_test.purchase_amount)
    seed_error = np.abs(seed.predict(fresh_test) - fresh_test.purchase_amount)

    assert chosen_error.mean() < seed_error.mean()


def test_market_model_beats_the_last_value_on_held_out_quarters(market_model: Trained):
    held_out = market_model.metadata["metrics"]["held_out"]

    assert market_model.metadata["training"]["split"] == "chronological"
    assert held_out["chosen"]["rmse"] < held_out["last_value"]["rmse"]
    assert held_out["chosen"]["mae"] < held_out["last_value"]["mae"]


def served(trained: Trained, rows: pd.DataFrame) -> np.ndarray:
    """What serving answers for `rows`: the pipeline's value, never below the target's minimum."""
    return np.maximum(0.0, pipeline(trained).predict(rows))


@functools.cache
def drawn_customers() -> pd.DataFrame:
    return data.customers(1_500_000, seed=424_242, dirty=False)


def population(name: str) -> pd.DataFrame:
    """Fresh customers from a seed training never used: all of them, or a shifted group."""
    drawn = drawn_customers()
    chosen = {
        "fresh": drawn.iloc[:40_000],
        "ages 18-25": drawn[drawn.age <= 25].iloc[:40_000],
        "incomes above 150,000": drawn[drawn.income > 150_000],
    }[name]
    return chosen.reset_index(drop=True)


def test_ninety_percent_intervals_cover_ninety_percent_of_unseen_customers(
    customer_model: Trained,
):
    unseen = population("fresh")
    features = unseen[["age", "gender", "income"]]

    interval = bounds(customer_model.metadata, features, served(customer_model, features), 0.9)

    assert abs(coverage(unseen.purchase_amount.to_numpy(), interval) - 0.9) <= 0.015
    assert abs(customer_model.metadata["metrics"]["interval_coverage"]["0.9"] - 0.9) <= 0.02


@pytest.mark.parametrize("name", ["fresh", "ages 18-25", "incomes above 150,000"])
@pytest.mark.parametrize("level", [0.9, 0.95])
def test_every_decile_and_every_gender_is_covered_within_four_points(
    customer_model: Trained, name: str, level: float
):
    unseen = population(name)
    features = unseen[["age", "gender", "income"]]
    interval = bounds(customer_model.metadata, features, served(customer_model, features), level)

    table = conditional_coverage(
        features, CUSTOMER_NEEDS, unseen.purchase_amount.to_numpy(), *interval
    )

    checked = [
        (feature, group, entry["coverage"])
        for feature, groups in table["features"].items()
        for group, entry in groups.items()
        if entry["checked"]
    ]
    assert {feature for feature, _, _ in checked} == {"age", "gender", "income"}
    assert [c for c in checked if abs(c[2] - level) > 0.04] == []


def test_intervals_follow_income_and_are_no_wider_on_average_than_one_width(
    customer_model: Trained,
):
    unseen = population("fresh")
    features = unseen[["age", "gender", "income"]]
    lower, upper = bounds(customer_model.metadata, features, served(customer_model, features), 0.9)
    width = upper - lower
    poorer = features.income < features.income.quantile(0.1)
    richer = features.income > features.income.quantile(0.9)
    recorded = customer_model.metadata["metrics"]["interval_width"]

    assert np.nanmean(width[richer]) > 1.3 * np.nanmean(width[poorer])
    assert recorded["mean"] <= recorded["one_width_for_all"]
    assert customer_model.metadata["intervals"]["scale"]["form"]["estimator"]["kind"] == "linear"


def test_no_served_amount_or_bound_is_negative_even_far_outside_the_training_range(
    customer_model: Trained,
):
    ages = np.arange(18, 101)
    incomes = np.array([0, 1, 100, 5_000, 50_000, 500_000, 5_000_000, 10_000_000])
    grid = pd.DataFrame(
        [(a, g, i) for a in ages for g in ("female", "male", "other") for i in incomes],
        columns=["age", "gender", "income"],
    )
    values = served(customer_model, grid)
    lower, _ = bounds(customer_model.metadata, grid, values, 0.95)

    assert values.min() >= 0
    assert np.nanmin(lower) >= 0
    assert (data.customers(50_000, seed=77, dirty=False).purchase_amount > 0).all()


def test_held_out_rows_are_judged_by_the_fit_rows_outlier_rule():
    frame = data.customers(2_000, seed=12, dirty=False)
    cleaned = clean(frame, CUSTOMER_NEEDS)
    parts = split_rows(cleaned, time_ordered=False)
    bent = cleaned.target.copy()
    bent.iloc[parts.held_out[:50]] *= 1_000  # held-out targets must not move the rule

    moved = split_rows(Cleaned(cleaned.features, bent, cleaned.dropped), time_ordered=False)

    assert moved.outlier_rule == parts.outlier_rule
    assert parts.outlier_rule["learned_on"] == "fit rows"
    assert set(parts.held_out) - set(moved.held_out) == set(parts.held_out[:50])


def test_the_explanations_base_value_is_within_two_percent_of_the_mean_prediction(
    customer_model: Trained,
):
    names = ["age", "gender", "income"]
    background = pd.DataFrame(customer_model.metadata["explanations"]["background"])[names]
    training_rows = data.customers(20_000, seed=3, dirty=False)[names]

    base = pipeline(customer_model).predict(background).mean()
    mean = pipeline(customer_model).predict(training_rows).mean()

    assert len(background) >= 200
    assert abs(base - mean) <= 0.02 * mean


def test_the_fairness_report_has_every_gender_and_its_share_of_the_top_decile(
    customer_model: Trained,
):
    report = customer_model.metadata["fairness"]
    genders = report["features"]["gender"]
    top = sum(group["share_of_top"] for group in genders.values())

    assert set(genders) == {"female", "male", "other"}
    assert top == pytest.approx(1.0, abs=1e-3)
    for group in genders.values():
        assert group["top_ratio"] == pytest.approx(
            group["share_of_top"] / group["share_of_rows"], rel=1e-2
        )
        assert {"rmse", "mae", "mean_error", "coverage"} <= set(group)
    assert genders["female"]["top_ratio"] > 1  # women spend more in this synthetic world
    assert "gender" in summary(customer_model.metadata)


def test_a_model_trained_without_gender_ignores_it_and_reports_the_cost():
    frame = data.customers(4_000, seed=21)
    recipe = RECIPES["customer_needs"]
    boosting = dataclasses.replace(
        recipe,
        candidates=lambda exclude: {"boosting": recipe.candidates(exclude)["gradient_boosting"]},
    )

    trained = train(boosting, frame, "v", CREATED, exclude=["gender"])

    rows = data.customers(200, seed=22, dirty=False)[["age", "gender", "income"]]
    swapped = rows.assign(
        gender=rows.gender.map({"female": "male", "male": "other", "other": "female"})
    )
    np.testing.assert_array_equal(
        pipeline(trained).predict(rows), pipeline(trained).predict(swapped)
    )
    cost = trained.metadata["fairness"]["exclusion_cost"]
    assert cost["rmse_without"] > cost["rmse_with"]
    assert trained.metadata["training"]["excluded_features"] == ["gender"]
    assert set(trained.metadata["fairness"]["features"]["gender"]) == {"female", "male", "other"}


def test_excluding_a_feature_the_model_does_not_have_is_refused():
    with pytest.raises(ValueError, match="shoe_size"):
        train(RECIPES["customer_needs"], data.customers(500), "v", CREATED, exclude=["shoe_size"])


def test_the_market_model_beats_drift_and_last_value_on_the_rolling_backtest(
    market_model: Trained,
):
    backtest = market_model.metadata["metrics"]["backtest"]
    scores = backtest["scores"]

    assert backtest["origins"] == 40
    assert (backtest["first"], backtest["last"]) == ("1999Q3", "2009Q2")
    assert scores["model"]["mape"] < scores["drift"]["mape"] < scores["last_value"]["mape"]
    assert scores["model"]["rmse"] < scores["drift"]["rmse"]
    assert scores["arima"]["mape"] > 0


def test_the_market_model_forecasts_growth_on_a_company_scale_too(market_model: Trained):
    company = pd.DataFrame({"sales": [50.0], "population": [0.5], "gdp": [80.0]})

    forecast = pipeline(market_model).predict(company)[0]

    assert 45 < forecast < 55
    assert market_model.metadata["intervals"]["scale"] == {"feature": "sales"}
    assert market_model.metadata["training"]["published_fit_on"] == "all rows"
    assert market_model.metadata["training"]["ranges"]["sales"]["min"] > 1_000


@pytest.mark.parametrize("name", ["customer_model", "market_model"])
def test_contributions_add_up_to_the_prediction(name: str, request: pytest.FixtureRequest):
    trained: Trained = request.getfixturevalue(name)
    model = pipeline(trained)
    names = [f["name"] for f in trained.metadata["schema"]["features"]]
    background = pd.DataFrame(trained.metadata["explanations"]["background"])[names]
    rows = (
        data.customers(30, seed=5, dirty=False) if name == "customer_model" else data.macro()[:30]
    )[names]

    base, contributions = shapley(model.predict, rows, background, names)

    assert base == pytest.approx(float(np.mean(model.predict(background))))
    np.testing.assert_allclose(base + contributions.sum(axis=1), model.predict(rows), rtol=1e-9)


def test_linear_contributions_match_the_closed_form():
    recipe = RECIPES["market_trend"]
    linear = dataclasses.replace(
        recipe, candidates=lambda exclude: {SEED_MODEL: recipe.baseline(exclude)}
    )
    trained = train(linear, data.macro(), "v", CREATED)
    assert trained.metadata["estimator"] == SEED_MODEL
    model = pipeline(trained)
    names = ["sales", "population", "gdp"]
    background = pd.DataFrame(trained.metadata["explanations"]["background"])[names]
    rows = data.macro()[names][:10]

    _, contributions = shapley(model.predict, rows, background, names)

    coefficients = model[-1].coef_
    closed_form = (rows - background.mean()).to_numpy() * coefficients
    np.testing.assert_allclose(contributions, closed_form, rtol=1e-7, atol=1e-7)


def test_cleaning_drops_and_counts_every_bad_row():
    frame = data.customers(2_000, seed=8)

    cleaned = clean(frame, CUSTOMER_NEEDS)

    dropped = len(frame) - len(cleaned.features)
    assert dropped > 0
    assert sum(cleaned.dropped.values()) >= dropped
    assert set(cleaned.features["gender"]) <= {"female", "male", "other"}
    assert not cleaned.features.isna().any().any()
    assert np.isfinite(cleaned.target).all()


def test_metadata_accounts_for_every_row_and_carries_what_serving_needs(customer_model: Trained):
    metadata = customer_model.metadata
    training = metadata["training"]

    assert training["rows_read"] == (
        training["rows_dropped"]
        + training["rows_fit"]
        + training["rows_calibration"]
        + training["rows_held_out"]
    )
    assert training["fingerprint"].startswith("sha256:")
    assert set(training["ranges"]) == {"age", "gender", "income"}
    assert metadata["versions"]["scikit-learn"]
    assert metadata["created"] == "2026-01-02T03:04:05+00:00"
    assert len(metadata["explanations"]["background"]) == 200
    assert metadata["intervals"]["scores"] == sorted(metadata["intervals"]["scores"])
    assert metadata["use"]["data"].startswith("synthetic")
    assert "credit" in metadata["use"]["out_of_scope"]
    assert metadata["metrics"]["conditional_coverage"]["worst"]["feature"] in training["ranges"]


def test_training_is_reproducible_in_content():
    frame = data.customers(1_000, seed=4)

    first = train(RECIPES["customer_needs"], frame, "v", CREATED).metadata
    second = train(RECIPES["customer_needs"], frame, "v", CREATED).metadata

    assert {k: v for k, v in first.items() if k != "sha256"} == {
        k: v for k, v in second.items() if k != "sha256"
    }


def test_summary_table_names_every_model_and_metric(market_model: Trained):
    table = summary(market_model.metadata)

    for word in ("chosen", "linear_regression", "last_value", "R2", "MAE", "RMSE", "coverage"):
        assert word in table
    for word in ("backtest", "drift", "arima", "1999Q3"):
        assert word in table


def test_train_publish_rollback_from_the_command_line(tmp_path, capsys):
    staging, store = tmp_path / "build", tmp_path / "store"
    custom = data.customers(300, seed=1)
    custom.to_csv(tmp_path / "mine.csv", index=False)

    assert (
        main(
            ["train", "customer_needs", "--data", str(tmp_path / "mine.csv"), "--out", str(staging)]
        )
        == 0
    )
    first = load_current(LocalFolder(staging), "customer_needs").version
    assert main(["publish", "customer_needs", "--from", str(staging), "--to", str(store)]) == 0
    assert main(["publish", "customer_needs", "--from", str(staging), "--to", str(store)]) == 0
    assert main(["train", "customer_needs", "--rows", "400", "--out", str(staging)]) == 0
    second = load_current(LocalFolder(staging), "customer_needs").version
    assert main(["publish", "customer_needs", "--from", str(staging), "--to", str(store)]) == 0
    assert load_current(LocalFolder(store), "customer_needs").version == second
    assert main(["rollback", "customer_needs", "--to", first, "--store", str(store)]) == 0

    assert load_current(LocalFolder(store), "customer_needs").version == first
    output = capsys.readouterr().out
    assert f"nothing -> {first}" in output
    assert "unchanged" in output
    assert f"{first} -> {second}" in output
    assert f"{second} -> {first}" in output


def test_command_line_reports_errors_without_a_traceback(tmp_path, capsys):
    code = main(["rollback", "customer_needs", "--to", "nope", "--store", str(tmp_path)])

    assert code == 1
    assert "error:" in capsys.readouterr().err


def test_train_without_a_feature_from_the_command_line(tmp_path, capsys):
    arguments = ["train", "customer_needs", "--rows", "1500", "--out", str(tmp_path)]

    assert main([*arguments, "--exclude-features", "gender"]) == 0

    metadata = load_current(LocalFolder(tmp_path), "customer_needs").metadata
    assert metadata["training"]["excluded_features"] == ["gender"]
    assert "trained without gender" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda frame: frame.iloc[[*range(10), 11, 10, *range(12, len(frame))]], "sort the file"),
        (lambda frame: pd.concat([frame.iloc[:6], frame.iloc[5:]]), "each period once"),
    ],
    ids=["unsorted", "repeated"],
)
def test_market_data_out_of_time_order_is_refused_naming_the_line(
    tmp_path, capsys, change, message
):
    change(data.macro()).to_csv(tmp_path / "macro.csv", index=False)

    code = main(
        ["train", "market_trend", "--data", str(tmp_path / "macro.csv"), "--out", str(tmp_path)]
    )

    error = capsys.readouterr().err
    assert code == 1
    assert message in error
    assert "line " in error
    assert "Traceback" not in error


def test_the_command_line_trains_on_a_european_excel_file_as_on_its_comma_twin(tmp_path):
    frame = data.customers(300, seed=1)
    frame.to_csv(tmp_path / "plain.csv", index=False)
    excel = frame.rename(columns=str.title).to_csv(
        sep=";", decimal=",", index=False, lineterminator="\r\n"
    )
    (tmp_path / "excel.csv").write_bytes(b"\xef\xbb\xbf" + excel.encode())

    for name in ("plain", "excel"):
        arguments = ["train", "customer_needs", "--data", str(tmp_path / f"{name}.csv")]
        assert main([*arguments, "--out", str(tmp_path / name)]) == 0

    plain, european = (
        load_current(LocalFolder(tmp_path / name), "customer_needs").metadata
        for name in ("plain", "excel")
    )
    assert european["metrics"] == plain["metrics"]
    assert european["training"]["rows_read"] == plain["training"]["rows_read"] == 300
    assert european["training"]["fingerprint"] == plain["training"]["fingerprint"]


def test_a_training_file_that_cannot_be_read_is_an_error_naming_why(tmp_path, capsys):
    (tmp_path / "pipes.csv").write_text("age|gender|income|purchase_amount\n35|F|1|2\n")

    code = main(["train", "customer_needs", "--data", str(tmp_path / "pipes.csv")])

    error = capsys.readouterr().err
    assert code == 1
    assert "separated by pipes" in error
    assert "Traceback" not in error
