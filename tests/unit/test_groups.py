"""Per-group reports measure what each group's rows say, on frames built with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import data
from models.groups import (
    conditional_coverage,
    coverage_lines,
    exclusion_cost,
    fairness,
    fairness_lines,
    groups_of,
    worst_group,
)
from shared.schema import CUSTOMER_NEEDS, CategoricalFeature, ModelSchema, NumericFeature

AGE = NumericFeature("age", 0, 10_000)
GENDER = CategoricalFeature("gender", ("female", "male", "other"))
SCHEMA = ModelSchema((AGE, GENDER), target="amount")


def frame(age: np.ndarray, gender: list[str] | np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"age": age, "gender": gender})


def test_a_number_is_cut_into_deciles_closed_on_the_right_with_compact_edges():
    features = frame(np.arange(1.0, 101.0), ["male"] * 100)

    groups = groups_of(features, SCHEMA)["age"]

    labels = list(groups.cat.categories)
    assert len(labels) == 10
    assert labels[:2] == ["[1, 10.9]", "(10.9, 20.8]"]
    assert labels[-1] == "(90.1, 100]"
    assert groups.value_counts(sort=False).tolist() == [10] * 10
    assert groups.iloc[0] == "[1, 10.9]"  # the lowest value is in the first bin
    assert groups.iloc[10] == "(10.9, 20.8]"  # 11 is above 10.9


def test_edges_that_read_alike_at_six_digits_get_more_digits():
    features = frame(1_000_000 + np.arange(100) * 0.01, ["male"] * 100)

    labels = list(groups_of(features, SCHEMA)["age"].cat.categories)

    assert len(labels) == 10
    assert len(set(labels)) == 10
    assert labels[0] == "[1000000, 1000000.1]"  # 8 digits: the fewest that tell them apart
    assert labels[-1] == "(1000000.9, 1000001]"
    edges = [float(label.strip("[(]").split(", ")[0]) for label in labels]
    assert edges == sorted(edges)


def test_few_distinct_values_make_fewer_groups_and_one_value_makes_one():
    few = frame(np.array([1.0] * 50 + [2.0] * 50), ["male"] * 100)
    one = frame(np.full(20, 7.0), ["male"] * 20)

    assert len(groups_of(few, SCHEMA)["age"].cat.categories) == 2
    assert list(groups_of(one, SCHEMA)["age"].cat.categories) == ["[7, 7]"]
    assert (groups_of(one, SCHEMA)["age"] == "[7, 7]").all()


def test_categories_come_in_schema_order_then_unknown_values_and_missing_is_no_group():
    features = frame(np.arange(5.0), ["male", "zeta", None, "female", "alpha"])

    groups = groups_of(features, SCHEMA)["gender"]

    assert list(groups.cat.categories) == ["female", "male", "other", "alpha", "zeta"]
    assert groups.isna().tolist() == [False, False, True, False, False]
    assert list(groups.index) == list(features.index)


def decile_frame() -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """1,000 rows, ages 0-999; every interval covers its actual 0 except every tenth row of the
    youngest decile, so that decile is covered 90% and the others 100%."""
    features = frame(np.arange(1000.0), ["female"] * 500 + ["male"] * 490 + ["other"] * 10)
    actual = np.zeros(1000)
    lower, upper = np.full(1000, -1.0), np.full(1000, 1.0)
    lower[0:100:10] = 1.0
    upper[0:100:10] = 2.0
    return features, actual, lower, upper


def test_coverage_is_measured_per_decile_in_bin_order():
    features, actual, lower, upper = decile_frame()

    table = conditional_coverage(features, SCHEMA, actual, lower, upper, min_rows=50)

    ages = table["features"]["age"]
    assert list(ages) == list(groups_of(features, SCHEMA)["age"].cat.categories)
    assert [entry["coverage"] for entry in ages.values()] == [0.9] + [1.0] * 9
    assert [entry["rows"] for entry in ages.values()] == [100] * 10
    assert table["features"]["gender"]["female"]["coverage"] == 0.98
    assert table["rows"] == 1000
    assert table["min_rows"] == 50


def test_withheld_intervals_are_counted_and_left_out_of_coverage():
    features, actual, lower, upper = decile_frame()
    lower[0:100:10] = np.nan  # the youngest decile's misses lose their interval

    table = conditional_coverage(features, SCHEMA, actual, lower, upper, min_rows=50)

    youngest = next(iter(table["features"]["age"].values()))
    assert youngest == {"rows": 100, "withheld": 10, "coverage": 1.0, "checked": True}
    assert table["withheld"] == 10


def test_small_groups_are_listed_with_their_coverage_but_unchecked():
    features, actual, lower, upper = decile_frame()
    upper[995:] = -2.0  # half of "other" missed

    table = conditional_coverage(features, SCHEMA, actual, lower, upper, min_rows=50)

    other = table["features"]["gender"]["other"]
    assert other == {"rows": 10, "withheld": 0, "coverage": 0.5, "checked": False}
    assert table["features"]["gender"]["male"]["checked"]


def test_a_group_whose_rows_are_all_withheld_is_unchecked_whatever_its_size():
    features, actual, lower, upper = decile_frame()
    upper[:100] = np.nan

    table = conditional_coverage(features, SCHEMA, actual, lower, upper, min_rows=50)

    entry = table["features"]["age"]["[0, 99.9]"]
    assert entry == {"rows": 100, "withheld": 100, "coverage": None, "checked": False}


def test_worst_group_is_the_checked_one_furthest_under_the_level():
    features, actual, lower, upper = decile_frame()
    upper[995:] = -2.0  # "other" is covered 50%, but too small to hold to the level

    table = conditional_coverage(features, SCHEMA, actual, lower, upper, min_rows=50)

    assert worst_group(table, 0.95) == {
        "feature": "age",
        "group": "[0, 99.9]",
        "rows": 100,
        "coverage": 0.9,
        "gap": 0.05,
    }
    assert worst_group(table, 0.8)["gap"] == pytest.approx(-0.1)


def test_worst_group_is_none_when_no_group_is_checked():
    features, actual, lower, upper = decile_frame()

    table = conditional_coverage(features, SCHEMA, actual, lower, upper, min_rows=5000)

    assert worst_group(table, 0.9) is None
    assert coverage_lines(table, 0.9)[-1] == "no group has 5000 measured rows: none checked"


def test_an_interval_of_the_wrong_length_is_refused():
    features, actual, lower, upper = decile_frame()

    with pytest.raises(ValueError, match="upper has 999 values for 1000 rows"):
        conditional_coverage(features, SCHEMA, actual, lower, upper[:-1])


def biased_frame() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """1,000 rows: female predictions 10 too high, male and other exact; "other" (the last
    200 rows) has the highest predictions."""
    gender = np.array(["female", "male"] * 400 + ["other"] * 200)
    actual = np.concatenate([np.linspace(0, 100, 800), np.linspace(500, 600, 200)])
    predicted = actual + np.where(gender == "female", 10.0, 0.0)
    return frame(np.arange(1000.0), gender), actual, predicted


def test_a_biased_category_shows_its_bias_as_mean_error():
    features, actual, predicted = biased_frame()

    report = fairness(features, SCHEMA, actual, predicted)

    female, male = report["features"]["gender"]["female"], report["features"]["gender"]["male"]
    assert female["mean_error"] == pytest.approx(10.0)
    assert female["rmse"] == pytest.approx(10.0)
    assert female["mae"] == pytest.approx(10.0)
    assert male["mean_error"] == male["rmse"] == 0.0
    assert female["coverage"] is None
    assert list(report["features"]) == ["gender"]  # numbers are not fairness groups


def test_a_category_holding_the_whole_top_decile_is_picked_one_over_its_share_more_often():
    features, actual, predicted = biased_frame()

    report = fairness(features, SCHEMA, actual, predicted, top_share=0.1)

    other = report["features"]["gender"]["other"]
    assert (report["rows"], report["top_share"], report["top_rows"]) == (1000, 0.1, 100)
    assert other["share_of_rows"] == 0.2
    assert other["share_of_top"] == 1.0
    assert other["top_ratio"] == pytest.approx(1 / 0.2)
    assert report["features"]["gender"]["female"]["share_of_top"] == 0.0
    assert report["features"]["gender"]["female"]["top_ratio"] == 0.0


def test_ties_in_prediction_go_to_the_earlier_row():
    gender = ["male"] * 10 + ["female"] * 90
    features = frame(np.arange(100.0), gender)

    report = fairness(features, SCHEMA, np.zeros(100), np.ones(100), top_share=0.1)

    assert report["features"]["gender"]["male"]["share_of_top"] == 1.0
    assert report["features"]["gender"]["female"]["share_of_top"] == 0.0


def test_the_top_share_never_falls_a_row_short_nor_takes_one_too_many():
    def top_rows(rows: int, top_share: float) -> int:
        features = frame(np.arange(float(rows)), ["male"] * rows)
        report = fairness(features, SCHEMA, np.zeros(rows), np.zeros(rows), top_share=top_share)
        return int(report["top_rows"])

    assert (top_rows(25, 0.1), top_rows(30, 0.1), top_rows(5, 0.1)) == (3, 3, 1)
    assert top_rows(100, 0.07) == 7  # 0.07 * 100 is 7.000000000000001 in floating point


def test_a_top_share_outside_zero_to_one_is_refused():
    features, actual, predicted = biased_frame()

    with pytest.raises(ValueError, match="top_share"):
        fairness(features, SCHEMA, actual, predicted, top_share=0)


def test_fairness_coverage_leaves_withheld_rows_out_and_an_empty_category_has_no_numbers():
    features = frame(np.arange(10.0), ["female"] * 6 + ["male"] * 4)
    actual = np.zeros(10)
    lower = np.array([-1, -1, -1, 1, np.nan, np.nan, -1, -1, 1, 1], dtype=float)
    upper = np.ones(10)

    report = fairness(features, SCHEMA, actual, np.zeros(10), lower, upper)

    genders = report["features"]["gender"]
    assert genders["female"]["coverage"] == 0.75  # 3 of the 4 with an interval
    assert genders["male"]["coverage"] == 0.5
    assert genders["other"] == {
        "rows": 0,
        "share_of_rows": 0.0,
        "rmse": None,
        "mae": None,
        "mean_error": None,
        "coverage": None,
        "share_of_top": 0.0,
        "top_ratio": None,
    }


def test_fairness_needs_both_bounds_or_neither():
    features, actual, predicted = biased_frame()

    with pytest.raises(ValueError, match="both interval bounds"):
        fairness(features, SCHEMA, actual, predicted, lower=predicted - 1)


def test_exclusion_cost_is_the_rmse_change_without_the_features():
    with_gender = {"rmse": 40.0, "mae": 30.0, "r2": 0.9}
    without_gender = {"rmse": 50.0, "mae": 36.5, "r2": 0.85}

    assert exclusion_cost(with_gender, without_gender) == {
        "rmse_with": 40.0,
        "rmse_without": 50.0,
        "rmse_change": 10.0,
        "rmse_change_percent": 25.0,
        "mae_with": 30.0,
        "mae_without": 36.5,
    }
    assert exclusion_cost(without_gender, with_gender)["rmse_change_percent"] == -20.0


def test_coverage_lines_show_every_group_mark_the_unchecked_and_name_the_worst():
    features, actual, lower, upper = decile_frame()
    upper[995:] = -2.0

    lines = coverage_lines(
        conditional_coverage(features, SCHEMA, actual, lower, upper, min_rows=50), 0.95
    )

    assert len(lines) == 2 + 10 + 3 + 1
    assert lines[2].split() == ["age", "[0,", "99.9]", "100", "0", "90.0%", "-5.0", "pt"]
    assert lines[-2].split()[-1] == "unchecked"
    assert [line for line in lines[2:] if line.endswith("unchecked")] == [lines[-2]]
    assert lines[-1] == "worst checked group: age [0, 99.9] at 90.0%, 5.0 points under"


def test_fairness_lines_have_a_header_and_a_row_per_category_under_100_characters():
    features, actual, predicted = biased_frame()
    report = fairness(features, SCHEMA, actual, predicted, predicted - 5, predicted + 5)

    lines = fairness_lines(report)

    assert len(lines) == 2 + 3
    assert lines[2].split() == [
        "female", "400", "40.0%", "10.000", "10.000", "+10.000", "0.0%", "0.0%", "0.00"
    ]  # fmt: skip
    assert lines[4].split()[-2:] == ["100.0%", "5.00"]
    assert max(len(line) for line in lines) < 100


def test_long_names_are_shortened_to_keep_lines_under_100_characters():
    long = "a category named at a length no column can hold"
    schema = ModelSchema((CategoricalFeature("g" * 60, (long,)),), target="amount")
    features = pd.DataFrame({"g" * 60: [long] * 10})
    report = fairness(features, schema, np.zeros(10), np.zeros(10))
    table = conditional_coverage(features, schema, np.zeros(10), -np.ones(10), np.ones(10), 1)

    lines = fairness_lines(report) + coverage_lines(table, 0.9)

    assert max(len(line) for line in lines) < 100
    assert "..." in lines[2]


def test_the_customer_generator_reports_every_gender_and_ten_age_and_income_deciles():
    customers = data.customers(5000, seed=5, dirty=False)
    actual = customers["purchase_amount"].to_numpy()
    truth = data.customer_truth(
        customers["age"].to_numpy(), customers["gender"].to_numpy(), customers["income"].to_numpy()
    )
    spread = 1.645 * float(np.std(actual - truth))

    table = conditional_coverage(customers, CUSTOMER_NEEDS, actual, truth - spread, truth + spread)
    report = fairness(customers, CUSTOMER_NEEDS, actual, truth, truth - spread, truth + spread)

    assert list(report["features"]["gender"]) == ["female", "male", "other"]
    assert len(table["features"]["age"]) == len(table["features"]["income"]) == 10
    overall = np.mean(np.abs(actual - truth) <= spread)
    for groups in table["features"].values():
        assert sum(entry["rows"] for entry in groups.values()) == 5000
        weighted = sum(entry["rows"] * entry["coverage"] for entry in groups.values()) / 5000
        assert weighted == pytest.approx(overall, abs=1e-3)
    genders = report["features"]["gender"].values()
    assert sum(entry["share_of_rows"] for entry in genders) == pytest.approx(1.0, abs=1e-3)
    assert sum(entry["share_of_top"] for entry in genders) == pytest.approx(1.0, abs=1e-3)
    assert report["top_rows"] == 500
    lines = coverage_lines(table, 0.9) + fairness_lines(report)
    assert max(len(line) for line in lines) < 100
