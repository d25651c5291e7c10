from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.training import Trained
from shared.codecs import json_answer
from shared.errors import InvalidInput, Problem
from shared.predict import (
    DEFAULT_LEVEL,
    NOT_AVAILABLE,
    OUTSIDE,
    Options,
    Prediction,
    options_for_outputs,
    options_from_query,
    output_columns,
    parse_options,
    predict,
)
from shared.schema import CUSTOMER_NEEDS
from shared.store import LoadedModel, LocalFolder, load_current, publish
from shared.validation import Rows, validate
from tests import expected

LEVEL = "must be a number between 0 and 1"


@pytest.fixture(scope="module")
def customer_needs(
    tmp_path_factory: pytest.TempPathFactory, customer_needs_v1: Trained
) -> LoadedModel:
    backend = LocalFolder(Path(tmp_path_factory.mktemp("store")))
    publish(backend, "customer_needs", "v1", customer_needs_v1.artifact, customer_needs_v1.metadata)
    return load_current(backend, "customer_needs")


@pytest.fixture(scope="module")
def market_trend(tmp_path_factory: pytest.TempPathFactory, market_trend_v1: Trained) -> LoadedModel:
    backend = LocalFolder(Path(tmp_path_factory.mktemp("store")))
    publish(backend, "market_trend", "v1", market_trend_v1.artifact, market_trend_v1.metadata)
    return load_current(backend, "market_trend")


def problems_of(parameters: dict[str, object]) -> tuple[Problem, ...]:
    with pytest.raises(InvalidInput) as caught:
        parse_options(parameters)
    return caught.value.problems


# parse_options


def test_no_parameters_asks_for_bare_predictions() -> None:
    options = parse_options({})

    assert options == Options(interval=None, explain=False, strict=False)
    assert not options.extras


@pytest.mark.parametrize("level", [0.5, 0.9, 0.999, 0.01])
def test_an_interval_level_inside_zero_and_one_is_accepted(level: float) -> None:
    options = parse_options({"interval": level})

    assert options.interval == level
    assert options.extras


def test_explain_true_is_accepted() -> None:
    options = parse_options({"explain": True})

    assert options == Options(interval=None, explain=True)
    assert options.extras


def test_null_interval_and_false_explain_mean_not_asked() -> None:
    assert parse_options({"interval": None, "explain": False, "strict": False}) == Options()


def test_strict_true_is_accepted_and_is_not_an_extra_output() -> None:
    options = parse_options({"strict": True})

    assert options == Options(strict=True)
    assert not options.extras  # it changes which rows are answered, not what an answer holds


@pytest.mark.parametrize(
    "level", [0, 1, 0.0, 1.0, -0.5, 1.5, 90, True, False, "0.9", [0.9], {}, float("nan")]
)
def test_a_bad_interval_level_is_invalid_input(level: object) -> None:
    assert problems_of({"interval": level}) == (Problem(None, "parameters.interval", LEVEL),)


@pytest.mark.parametrize("explain", ["true", 1, 0, None, "yes", [True]])
def test_explain_must_be_a_boolean(explain: object) -> None:
    assert problems_of({"explain": explain}) == (
        Problem(None, "parameters.explain", "must be true or false"),
    )


@pytest.mark.parametrize("strict", ["true", 1, 0, None, "yes", [True]])
def test_strict_must_be_a_boolean(strict: object) -> None:
    assert problems_of({"strict": strict}) == (
        Problem(None, "parameters.strict", "must be true or false"),
    )


def test_unknown_parameters_are_invalid_input() -> None:
    assert problems_of({"confidence": 0.9, "interval": 0.9}) == (
        Problem(None, "parameters.confidence", "unknown parameter"),
    )


def test_every_fault_in_the_parameters_is_reported_at_once() -> None:
    problems = problems_of({"top_k": 3, "interval": 1, "explain": "yes"})

    assert problems == (
        Problem(None, "parameters.top_k", "unknown parameter"),
        Problem(None, "parameters.interval", LEVEL),
        Problem(None, "parameters.explain", "must be true or false"),
    )


# options_from_query


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        (" True ", True),
        ("1", True),
        ("false", False),
        ("0", False),
        ("yes", "yes"),
        ("", ""),
    ],
)
def test_explain_from_the_query_string(value: str, expected: object) -> None:
    assert options_from_query({"explain": value}) == {"explain": expected}


@pytest.mark.parametrize(("value", "expected"), [("0.9", 0.9), (" 0.5 ", 0.5), ("1", 1.0)])
def test_interval_from_the_query_string_is_a_number(value: str, expected: float) -> None:
    assert options_from_query({"interval": value}) == {"interval": expected}


def test_a_query_interval_that_is_not_a_number_is_left_for_parse_options() -> None:
    parameters = options_from_query({"interval": "ninety"})

    assert parameters == {"interval": "ninety"}
    assert problems_of(parameters) == (Problem(None, "parameters.interval", LEVEL),)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0", "1"])
def test_query_interval_levels_outside_zero_and_one_are_rejected(value: str) -> None:
    assert problems_of(options_from_query({"interval": value})) == (
        Problem(None, "parameters.interval", LEVEL),
    )


def test_other_query_parameters_pass_through_to_be_rejected() -> None:
    parameters = options_from_query({"format": "csv", "explain": "false"})

    assert parameters == {"format": "csv", "explain": False}
    assert problems_of(parameters) == (Problem(None, "parameters.format", "unknown parameter"),)


def test_query_options_parse_into_options() -> None:
    options = parse_options(options_from_query({"interval": "0.8", "explain": "true"}))

    assert options == Options(interval=0.8, explain=True)


@pytest.mark.parametrize(("value", "strict"), [("true", True), (" 1 ", True), ("FALSE", False)])
def test_strict_from_the_query_string(value: str, strict: bool) -> None:
    assert parse_options(options_from_query({"strict": value})) == Options(strict=strict)


def test_a_query_strict_that_is_not_a_flag_is_rejected() -> None:
    assert problems_of(options_from_query({"strict": "yes"})) == (
        Problem(None, "parameters.strict", "must be true or false"),
    )


# predict


def customers_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": [" 35 ", 200, "61", 18],
            "gender": ["F", "m", "x", "Male"],
            "income": ["52000", 1, 1e6, "0"],
        },
        dtype=object,
    )


def rows_of(raw: pd.DataFrame) -> Rows:
    return Rows.of_columns({name: raw[name].tolist() for name in raw.columns}, len(raw))


def prediction_of(model: LoadedModel, raw: pd.DataFrame, options: Options) -> Prediction:
    """`predict` on the rows of a frame; the valid ones are predicted, the others named."""
    return predict(model, rows_of(raw), options, all_or_nothing=False)


def predict_frame(model: LoadedModel, raw: pd.DataFrame, options: Options) -> pd.DataFrame:
    """The prediction's columns as a frame indexed by the rows' positions in `raw`: numbers
    as floats (a withheld bound as NaN), the outside-the-training-range names as text."""
    prediction = prediction_of(model, raw, options)
    columns = {
        name: list(values)
        if name == OUTSIDE
        else np.broadcast_to(np.asarray(values, dtype=float), len(prediction))
        for name, values in prediction.columns().items()
    }
    return pd.DataFrame(columns, index=pd.Index(prediction.positions, dtype=int))


def canonical_rows(model: LoadedModel, raw: pd.DataFrame) -> list[dict[str, object]]:
    """The valid rows of `raw` as the validator canonicalises them, for tests/expected.py."""
    features = validate(raw, model.schema, allow_extra=True).features
    return features[list(model.schema.feature_names)].to_dict(orient="records")


def served(model: LoadedModel, raw: pd.DataFrame) -> list[float]:
    """What serving should answer for the valid rows: the pipeline's values, in the domain."""
    features = validate(raw, model.schema).features
    predicted = model.pipeline.predict(features[list(model.schema.feature_names)])
    return [expected.in_domain(model.metadata, float(value)) for value in predicted]


def assert_same_predictions(actual: np.ndarray, expected: np.ndarray) -> None:
    """The serving form's sums (math.fsum) and scikit-learn's (BLAS) may differ in the last
    bit, depending on how BLAS was set up before the model was fitted; nothing more."""
    np.testing.assert_allclose(actual, expected, rtol=1e-15, atol=0)


def test_predictions_equal_the_pipelines_own_in_the_targets_domain(
    customer_needs: LoadedModel,
) -> None:
    result = predict_frame(customer_needs, customers_frame(), Options())

    assert list(result.columns) == ["purchase_amount", OUTSIDE]
    assert result.index.tolist() == [0, 2, 3]
    assert_same_predictions(
        result["purchase_amount"].to_numpy(), np.array(served(customer_needs, customers_frame()))
    )
    assert result["purchase_amount"].dtype == np.float64


def test_each_row_names_the_features_outside_the_training_range(
    customer_needs: LoadedModel,
) -> None:
    rows = canonical_rows(customer_needs, customers_frame())

    result = predict_frame(customer_needs, customers_frame(), Options())

    names = [";".join(expected.outside(customer_needs.metadata, row)) for row in rows]
    assert result[OUTSIDE].tolist() == names
    assert names[0] == ""  # a 35-year-old woman on 52000 is what customers look like
    assert "income" in names[1].split(";")  # an income of a million is not


def test_predictions_do_not_depend_on_column_order(customer_needs: LoadedModel) -> None:
    shuffled = predict_frame(
        customer_needs, customers_frame()[["income", "age", "gender"]], Options()
    )

    pd.testing.assert_frame_equal(
        shuffled, predict_frame(customer_needs, customers_frame(), Options())
    )


def test_market_trend_predictions_equal_the_pipelines_own(market_trend: LoadedModel) -> None:
    raw = pd.DataFrame(
        {"sales": ["1700.5", 1800], "population": [177, "178.5"], "gdp": [2700, 2750.25]},
        dtype=object,
    )
    features = validate(raw, market_trend.schema).features

    result = predict_frame(market_trend, raw, Options())

    assert result.index.tolist() == [0, 1]
    np.testing.assert_array_equal(
        result["future_sales"].to_numpy(), market_trend.pipeline.predict(features)
    )


def test_predicting_no_rows_gives_no_predictions(customer_needs: LoadedModel) -> None:
    # `{"instances": []}` and a header-only CSV both validate to zero rows.
    result = predict_frame(customer_needs, customers_frame().iloc[:0], Options())

    assert result.empty
    assert list(result.columns) == ["purchase_amount", OUTSIDE]


def without(model: LoadedModel, *keys: str) -> LoadedModel:
    metadata = {key: value for key, value in model.metadata.items() if key not in keys}
    return dataclasses.replace(model, metadata=metadata)


@pytest.mark.parametrize(
    ("options", "fields"),
    [
        (Options(interval=0.9), ["parameters.interval"]),
        (Options(explain=True), ["parameters.explain"]),
        (Options(interval=0.9, explain=True), ["parameters.interval", "parameters.explain"]),
    ],
)
def test_extras_are_not_available_when_the_metadata_lacks_them(
    customer_needs: LoadedModel, options: Options, fields: list[str]
) -> None:
    model = without(customer_needs, "intervals", "explanations")

    with pytest.raises(InvalidInput, match="not available for this model") as caught:
        predict_frame(model, customers_frame(), options)

    assert caught.value.problems == tuple(Problem(None, field, NOT_AVAILABLE) for field in fields)


def test_outputs_asked_for_by_name_are_named_when_their_extras_are_not_available(
    customer_needs: LoadedModel,
) -> None:
    model = without(customer_needs, "intervals", "explanations")
    outputs = ["purchase_amount", "contribution_age", "purchase_amount_upper", "base_value"]
    options = options_for_outputs(model.schema, outputs, Options())

    with pytest.raises(InvalidInput, match="not available for this model") as caught:
        predict_frame(model, customers_frame(), options)

    assert caught.value.problems == (
        Problem(None, "outputs.purchase_amount_upper", NOT_AVAILABLE),
        Problem(None, "outputs.contribution_age", NOT_AVAILABLE),
    )


def test_strict_is_not_available_without_the_training_ranges(customer_needs: LoadedModel) -> None:
    training = {k: v for k, v in customer_needs.metadata["training"].items() if k != "ranges"}
    model = dataclasses.replace(
        customer_needs, metadata={**customer_needs.metadata, "training": training}
    )

    with pytest.raises(InvalidInput, match="not available for this model") as caught:
        predict_frame(model, customers_frame(), Options(strict=True))

    assert caught.value.problems == (Problem(None, "parameters.strict", NOT_AVAILABLE),)


def test_extras_are_checked_per_kind_of_metadata(customer_needs: LoadedModel) -> None:
    model = without(customer_needs, "explanations")

    with pytest.raises(InvalidInput) as caught:
        predict_frame(model, customers_frame(), Options(interval=0.9, explain=True))

    assert caught.value.problems == (Problem(None, "parameters.explain", NOT_AVAILABLE),)


def test_bare_predictions_need_no_extras_in_the_metadata(customer_needs: LoadedModel) -> None:
    model = without(customer_needs, "intervals", "explanations")

    result = predict_frame(model, customers_frame(), Options())

    assert_same_predictions(
        result["purchase_amount"].to_numpy(), np.array(served(model, customers_frame()))
    )


def bounds_of(result: pd.DataFrame) -> list[tuple[float, float] | None]:
    """Each row's (lower, upper), None where the interval was withheld (NaN)."""
    lower, upper = result["purchase_amount_lower"], result["purchase_amount_upper"]
    assert (lower.isna() == upper.isna()).all()
    return [None if math.isnan(lo) else (lo, hi) for lo, hi in zip(lower, upper, strict=True)]


def assert_same_bounds(
    actual: list[tuple[float, float] | None], wanted: list[tuple[float, float] | None]
) -> None:
    assert [b is None for b in actual] == [b is None for b in wanted]
    for got, want in zip(actual, wanted, strict=True):
        if want is not None:
            assert got == pytest.approx(want, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize("level", [0.5, 0.8, 0.9])
def test_an_interval_is_the_scaled_conformal_width_around_the_prediction(
    customer_needs: LoadedModel, level: float
) -> None:
    rows = canonical_rows(customer_needs, customers_frame())
    values = served(customer_needs, customers_frame())

    result = predict_frame(customer_needs, customers_frame(), Options(interval=level))

    assert list(result.columns) == [
        "purchase_amount",
        "purchase_amount_lower",
        "purchase_amount_upper",
        OUTSIDE,
    ]
    assert_same_predictions(result["purchase_amount"].to_numpy(), np.array(values))
    wanted = expected.intervals(customer_needs.metadata, rows, values, level)
    assert_same_bounds(bounds_of(result), wanted)
    assert wanted[0] is not None  # the row inside the training range gets one ...
    assert wanted[1] is None  # ... the row with an income never seen in training does not


def test_intervals_are_withheld_exactly_where_a_feature_is_outside_the_training_range(
    customer_needs: LoadedModel,
) -> None:
    result = predict_frame(customer_needs, customers_frame(), Options(interval=0.9))

    withheld = result["purchase_amount_lower"].isna()
    assert withheld.tolist() == (result[OUTSIDE] != "").tolist()
    assert withheld.any()
    assert not withheld.all()


def test_interval_widths_follow_the_scale_model(customer_needs: LoadedModel) -> None:
    # Two customers inside the training range whose residuals are expected to differ in size.
    raw = pd.DataFrame({"age": [30, 80], "gender": ["F", "M"], "income": [30000, 110000]})
    rows = canonical_rows(customer_needs, raw)
    scales = [expected.scale(customer_needs.metadata, row) for row in rows]

    result = predict_frame(customer_needs, raw, Options(interval=0.8))

    widths = (result["purchase_amount_upper"] - result["purchase_amount"]).tolist()
    quantile = expected.score_quantile(customer_needs.metadata, 0.8)
    assert widths == pytest.approx([quantile * s for s in scales], rel=1e-9)
    assert scales[0] != pytest.approx(scales[1])


def test_a_lower_bound_below_the_targets_minimum_is_raised_to_it(
    customer_needs: LoadedModel,
) -> None:
    # Scores a thousand times larger: every lower bound would fall far below zero.
    intervals = dict(customer_needs.metadata["intervals"])
    intervals["scores"] = [1000 * s for s in intervals["scores"]]
    wide = dataclasses.replace(
        customer_needs, metadata={**customer_needs.metadata, "intervals": intervals}
    )
    rows = canonical_rows(wide, customers_frame())
    values = served(wide, customers_frame())

    result = predict_frame(wide, customers_frame(), Options(interval=0.9))

    given = result["purchase_amount_lower"].dropna()
    assert not given.empty
    assert (given == wide.schema.target_minimum).all()
    assert_same_bounds(bounds_of(result), expected.intervals(wide.metadata, rows, values, 0.9))


def test_a_higher_level_never_gives_a_narrower_interval(customer_needs: LoadedModel) -> None:
    rows = customers_frame()

    widths = []
    for level in (0.5, 0.8, 0.9, 0.95):
        first = predict_frame(customer_needs, rows, Options(interval=level)).iloc[0]
        widths.append(float(first["purchase_amount_upper"] - first["purchase_amount_lower"]))

    assert widths == sorted(widths)
    assert widths[0] > 0


def test_a_level_the_calibration_rows_cannot_promise_is_invalid_input(
    customer_needs: LoadedModel,
) -> None:
    scores = customer_needs.metadata["intervals"]["scores"]
    too_high = (len(scores) + 0.5) / (len(scores) + 1)

    with pytest.raises(InvalidInput, match="interval level too high") as caught:
        predict_frame(customer_needs, customers_frame(), Options(interval=too_high))

    [problem] = caught.value.problems
    assert problem.field == "parameters.interval"
    assert f"{len(scores)} calibration rows" in problem.reason


def test_old_metadata_with_absolute_residuals_gets_one_width_for_every_row(
    customer_needs: LoadedModel,
) -> None:
    residuals = sorted(customer_needs.metadata["intervals"]["scores"])
    old = dataclasses.replace(
        customer_needs,
        metadata={**customer_needs.metadata, "intervals": {"abs_residuals": residuals}},
    )
    raw = pd.DataFrame({"age": [30, 80], "gender": ["F", "M"], "income": [30000, 110000]})

    result = predict_frame(old, raw, Options(interval=0.8))

    widths = (result["purchase_amount_upper"] - result["purchase_amount"]).tolist()
    assert widths == pytest.approx([expected.score_quantile(old.metadata, 0.8)] * 2, rel=1e-12)


# strict


def strict_reason(model: LoadedModel, feature: str) -> str:
    return expected.strict_reason(model.metadata, feature)


def test_strict_makes_every_row_outside_the_training_range_a_fault(
    customer_needs: LoadedModel,
) -> None:
    raw = customers_frame()
    positions = [0, 2, 3]  # the valid rows
    rows = canonical_rows(customer_needs, raw)
    outside = {
        p: expected.outside(customer_needs.metadata, r)
        for p, r in zip(positions, rows, strict=True)
    }

    prediction = prediction_of(customer_needs, raw, Options(strict=True))

    assert list(prediction.positions) == [p for p in positions if not outside[p]]
    strict_faults = [p for p in prediction.problems if p.reason.endswith("(strict)")]
    assert strict_faults == [
        Problem(p, name, strict_reason(customer_needs, name))
        for p in positions
        for name in outside[p]
    ]
    assert [p.row for p in prediction.problems] == sorted(p.row for p in prediction.problems)
    assert prediction.outside is not None
    assert not any(prediction.outside.any())


def test_strict_with_all_or_nothing_answers_nothing_when_a_row_is_outside(
    customer_needs: LoadedModel,
) -> None:
    raw = customers_frame().iloc[[0, 2]].reset_index(drop=True)  # both valid, one outside

    prediction = predict(customer_needs, rows_of(raw), Options(strict=True))
    lenient = predict(customer_needs, rows_of(raw), Options())

    assert len(prediction) == 0
    assert [(p.row, p.field) for p in prediction.problems] == [(1, "income")]
    assert len(lenient) == 2
    assert not lenient.problems


def test_explanations_add_up_to_the_prediction(customer_needs: LoadedModel) -> None:
    features = validate(customers_frame(), customer_needs.schema).features
    names = list(customer_needs.schema.feature_names)
    background = pd.DataFrame(customer_needs.metadata["explanations"]["background"])[names]

    result = predict_frame(customer_needs, customers_frame(), Options(explain=True))

    contributions = result[[f"contribution_{name}" for name in names]].to_numpy()
    base = float(np.mean(customer_needs.pipeline.predict(background)))
    np.testing.assert_allclose(result["base_value"].to_numpy(), base)
    np.testing.assert_allclose(
        result["base_value"].to_numpy() + contributions.sum(axis=1),
        customer_needs.pipeline.predict(features),
    )


def test_a_feature_equal_to_every_background_value_contributes_nothing(
    market_trend: LoadedModel,
) -> None:
    names = list(market_trend.schema.feature_names)
    background = pd.DataFrame(market_trend.metadata["explanations"]["background"])[names]
    row = background.iloc[[0]].copy()
    row["population"] = 250.0
    market = dataclasses.replace(
        market_trend,
        metadata={
            **market_trend.metadata,
            "explanations": {"background": background.assign(population=250.0).to_dict("records")},
        },
    )

    result = predict_frame(market, row.reset_index(drop=True), Options(explain=True))

    assert result["contribution_population"].tolist() == pytest.approx([0.0], abs=1e-9)


# json_answer


def test_json_predictions_are_bare_numbers_without_extras(customer_needs: LoadedModel) -> None:
    result = predict_frame(customer_needs, customers_frame(), Options())

    answer = json_answer(prediction_of(customer_needs, customers_frame(), Options()))

    assert list(answer) == ["predictions", OUTSIDE]
    assert answer["predictions"] == result["purchase_amount"].tolist()
    assert all(type(value) is float for value in answer["predictions"])
    assert answer[OUTSIDE] == [text.split(";") if text else [] for text in result[OUTSIDE]]


def test_json_predictions_are_objects_per_row_with_extras(customer_needs: LoadedModel) -> None:
    names = customer_needs.schema.feature_names
    options = Options(interval=0.8, explain=True)
    result = predict_frame(customer_needs, customers_frame(), options)

    answer = json_answer(prediction_of(customer_needs, customers_frame(), options))

    assert list(answer) == ["predictions"]
    predictions = answer["predictions"]
    assert len(predictions) == len(result)
    for prediction, (_, row) in zip(predictions, result.iterrows(), strict=True):
        outside = row[OUTSIDE].split(";") if row[OUTSIDE] else []
        interval = (
            {
                "level": 0.8,
                "lower": None,
                "upper": None,
                "withheld": "outside the training range: not calibrated there",
            }
            if outside
            else {
                "level": 0.8,
                "lower": row["purchase_amount_lower"],
                "upper": row["purchase_amount_upper"],
            }
        )
        assert prediction == {
            "purchase_amount": row["purchase_amount"],
            "interval": interval,
            OUTSIDE: outside,
            "base_value": row["base_value"],
            "contributions": {name: row[f"contribution_{name}"] for name in names},
        }
        assert list(prediction) == [
            "purchase_amount",
            "interval",
            OUTSIDE,
            "base_value",
            "contributions",
        ]
    assert any(p["interval"]["lower"] is None for p in predictions)
    assert any(p["interval"]["lower"] is not None for p in predictions)


# options_for_outputs: an output asked for by name brings what it needs


@pytest.mark.parametrize(
    ("outputs", "interval", "explain"),
    [
        ([], None, False),
        (["purchase_amount", OUTSIDE], None, False),
        (["purchase_amount_lower"], DEFAULT_LEVEL, False),
        (["purchase_amount_upper", "purchase_amount"], DEFAULT_LEVEL, False),
        (["base_value"], None, True),
        (["contribution_income"], None, True),
        (["contribution_gender", "purchase_amount_lower"], DEFAULT_LEVEL, True),
    ],
)
def test_bounds_imply_an_interval_and_explanation_outputs_explanations(
    outputs: list[str], interval: float | None, explain: bool
) -> None:
    options = options_for_outputs(CUSTOMER_NEEDS, outputs, Options(strict=True))

    assert options == Options(interval=interval, explain=explain, strict=True)
    assert set(outputs) <= set(output_columns(CUSTOMER_NEEDS, options))


def test_a_level_or_explain_the_request_set_stays_its_own() -> None:
    asked = Options(interval=0.8, explain=True)

    options = options_for_outputs(CUSTOMER_NEEDS, ["purchase_amount_lower", "base_value"], asked)

    assert options == asked
    assert (options.source("interval"), options.source("explain")) == (
        "parameters.interval",
        "parameters.explain",
    )


def test_every_output_asked_for_alone_is_among_the_columns_its_options_give() -> None:
    for name in output_columns(CUSTOMER_NEEDS):
        options = options_for_outputs(CUSTOMER_NEEDS, [name], Options())

        assert name in output_columns(CUSTOMER_NEEDS, options), name
