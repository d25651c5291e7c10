"""Training picks honestly, measures on held-out rows, and carries what serving needs."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import joblib
import numpy as np
import pandas as pd
import pytest

from models import data
from models.__main__ import main
from models.recipes import RECIPES, SEED_MODEL
from models.report import summary
from models.training import Trained, clean, train
from shared.predict._explain import shapley
from shared.predict._intervals import half_width
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
    assert held_out["chosen"]["rmse"] < 0.5 * held_out[SEED_MODEL]["rmse"]
    assert held_out["chosen"]["rmse"] < held_out["mean"]["rmse"]


def test_customer_model_beats_the_seed_on_fresh_data_too(customer_model: Trained):
    fresh = data.customers(5_000, seed=99, dirty=False)
    features, target = fresh[["age", "gender", "income"]], fresh["purchase_amount"]
    seed = RECIPES["customer_needs"].candidates()[SEED_MODEL].fit(features, target)
    fresh_test = data.customers(5_000, seed=100, dirty=False)

    chosen_error = np.abs(pipeline(customer_model).predict(fresh_test) - fresh_test.purchase_amount)
    seed_error = np.abs(seed.predict(fresh_test) - fresh_test.purchase_amount)

    assert chosen_error.mean() < seed_error.mean()


def test_market_model_beats_the_last_value_on_held_out_quarters(market_model: Trained):
    held_out = market_model.metadata["metrics"]["held_out"]

    assert market_model.metadata["training"]["split"] == "chronological"
    assert held_out["chosen"]["rmse"] < held_out["last_value"]["rmse"]
    assert held_out["chosen"]["mae"] < held_out["last_value"]["mae"]


def test_ninety_percent_intervals_cover_ninety_percent_of_unseen_customers(
    customer_model: Trained,
):
    unseen = data.customers(20_000, seed=123, dirty=False)
    residuals = customer_model.metadata["intervals"]["abs_residuals"]

    predicted = pipeline(customer_model).predict(unseen)
    covered = np.abs(unseen.purchase_amount - predicted) <= half_width(residuals, 0.9)

    assert abs(covered.mean() - 0.9) <= 0.02
    assert abs(customer_model.metadata["metrics"]["interval_coverage"]["0.9"] - 0.9) <= 0.02


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


def test_linear_contributions_match_the_closed_form(market_model: Trained):
    assert market_model.metadata["estimator"] == SEED_MODEL
    model = pipeline(market_model)
    names = ["sales", "population", "gdp"]
    background = pd.DataFrame(market_model.metadata["explanations"]["background"])[names]
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
    assert cleaned.target.max() < frame["purchase_amount"].astype(float).max()


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
    assert len(metadata["explanations"]["background"]) == 50
    assert metadata["intervals"]["abs_residuals"] == sorted(metadata["intervals"]["abs_residuals"])


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
