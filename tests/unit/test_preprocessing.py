from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import Problem
from shared.schema import CUSTOMER_NEEDS, MARKET_TREND, CategoricalFeature, NumericFeature
from shared.validation import (
    ABSENT,
    MISSING,
    MISSING_COLUMN,
    NOT_A_NUMBER,
    NOT_A_PLAIN_NUMBER,
    NOT_FINITE,
    UNKNOWN_FIELD,
    validate,
)

AGE_RANGE = "must be between 18 and 100"
GENDERS = "must be one of female, male, other"
VALID = {"age": 35, "gender": "female", "income": 52_000}


def rows(*instances: dict[str, Any]) -> pd.DataFrame:
    """Raw rows as the JSON codec builds them: object columns, ABSENT where a key is missing."""
    keys = list(dict.fromkeys(key for instance in instances for key in instance))
    columns = {key: [instance.get(key, ABSENT) for instance in instances] for key in keys}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(instances)), dtype=object)


def age_problems(value: object) -> tuple[Problem, ...]:
    return validate(rows({**VALID, "age": value}), CUSTOMER_NEEDS).problems


def test_a_valid_row_comes_back_canonical() -> None:
    result = validate(rows(VALID), CUSTOMER_NEEDS)

    assert result.problems == ()
    assert result.rejected_rows == frozenset()
    assert result.features.to_dict(orient="records") == [
        {"age": 35.0, "gender": "female", "income": 52_000.0}
    ]
    assert list(result.features.columns) == ["age", "gender", "income"]
    assert result.features["age"].dtype == np.float64


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (42, 42.0),
        (42.5, 42.5),
        (np.int64(42), 42.0),
        ("42", 42.0),
        (" 42 ", 42.0),
        ("\t42\r\n", 42.0),
        ("+42", 42.0),
        ("42.", 42.0),
        ("4.2e1", 42.0),
        ("4.2E+1", 42.0),
        ("1e3", None),  # 1000 is out of the age range; checked on income below
    ],
)
def test_numbers_and_numeric_strings_are_accepted(raw: object, expected: float | None) -> None:
    if expected is None:
        result = validate(rows({**VALID, "income": raw}), CUSTOMER_NEEDS)
        expected_value, column = 1000.0, "income"
    else:
        result = validate(rows({**VALID, "age": raw}), CUSTOMER_NEEDS)
        expected_value, column = expected, "age"

    assert result.problems == ()
    assert result.features[column].tolist() == [expected_value]


@pytest.mark.parametrize(
    ("raw", "reason", "received"),
    [
        (float("nan"), MISSING, None),  # pandas' own marker for a missing value
        ("nan", NOT_FINITE, "nan"),
        ("NaN", NOT_FINITE, "NaN"),
        (" -nan ", NOT_FINITE, " -nan "),
        (float("inf"), NOT_FINITE, "inf"),
        (float("-inf"), NOT_FINITE, "-inf"),
        ("Infinity", NOT_FINITE, "Infinity"),
        ("-Infinity", NOT_FINITE, "-Infinity"),
        ("inf", NOT_FINITE, "inf"),
        ("+INF", NOT_FINITE, "+INF"),
        (True, NOT_A_NUMBER, True),
        (False, NOT_A_NUMBER, False),
        (np.bool_(True), NOT_A_NUMBER, True),
        ({"value": 42}, NOT_A_NUMBER, None),  # nothing short to show
        ([42], NOT_A_NUMBER, None),
        ("forty-two", NOT_A_NUMBER, "forty-two"),
        ("42 years", NOT_A_NUMBER, "42 years"),
        ("0x2a", NOT_A_NUMBER, "0x2a"),
        ("$52,000", NOT_A_PLAIN_NUMBER, "$52,000"),
        ("52,000", NOT_A_PLAIN_NUMBER, "52,000"),
        ("52000 EUR", NOT_A_PLAIN_NUMBER, "52000 EUR"),
        ("EUR 52.000,50", NOT_A_PLAIN_NUMBER, "EUR 52.000,50"),
        ("-€1 234", NOT_A_PLAIN_NUMBER, "-€1 234"),
        ("35,5", NOT_A_PLAIN_NUMBER, "35,5"),
        ("123456789012345678,5", NOT_A_PLAIN_NUMBER, "1234567890..."),
        (17, AGE_RANGE, 17),
        (17.999, AGE_RANGE, 17.999),
        (100.001, AGE_RANGE, 100.001),
        ("101", AGE_RANGE, 101),  # the number it was read as, however it was sent
        (" 101.0 ", AGE_RANGE, 101),
        (-40, AGE_RANGE, -40),
        (10**30, AGE_RANGE, 1e30),
        (ABSENT, MISSING, None),
        (None, MISSING, None),
        ("", MISSING, None),
        ("   ", MISSING, None),
    ],
)
def test_a_bad_number_is_reported_with_its_reason_and_what_was_received(
    raw: object, reason: str, received: object
) -> None:
    problems = age_problems(raw)

    assert problems == (Problem(0, "age", reason, received),)
    assert type(problems[0].received) is type(received)  # 101, not 101.0 or "101"


@pytest.mark.parametrize("raw", [18, 100, 18.0, "100.0"])
def test_range_bounds_are_inclusive(raw: object) -> None:
    assert age_problems(raw) == ()


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("female", "female"),
        ("Female", "female"),
        ("FEMALE", "female"),
        ("f", "female"),
        ("F", "female"),
        (" woman ", "female"),
        ("M", "male"),
        ("m", "male"),
        ("male", "male"),
        ("Male", "male"),
        ("Man", "male"),
        ("X", "other"),
        ("Non-Binary", "other"),
        ("diverse", "other"),
    ],
)
def test_category_spellings_become_canonical(raw: str, canonical: str) -> None:
    result = validate(rows({**VALID, "gender": raw}), CUSTOMER_NEEDS)

    assert result.problems == ()
    assert result.features["gender"].tolist() == [canonical]


@pytest.mark.parametrize(
    ("raw", "reason", "received"),
    [
        ("unknown", GENDERS, "unknown"),
        ("fe male", GENDERS, "fe male"),
        (1, GENDERS, 1),
        (True, GENDERS, True),
        (["male"], GENDERS, None),
        ({"gender": "male"}, GENDERS, None),
        ("sk-" + "x" * 40, GENDERS, "sk-xxxxxxx..."),  # a long text is never shown whole
        (ABSENT, MISSING, None),
        (None, MISSING, None),
        ("", MISSING, None),
        (" ", MISSING, None),
        (float("nan"), MISSING, None),
    ],
)
def test_a_bad_category_is_reported_with_its_reason_and_what_was_received(
    raw: object, reason: str, received: object
) -> None:
    result = validate(rows({**VALID, "gender": raw}), CUSTOMER_NEEDS)

    assert result.problems == (Problem(0, "gender", reason, received),)
    assert result.features.empty


def test_unknown_fields_are_rejected() -> None:
    result = validate(rows({**VALID, "email": "a@example.com"}), CUSTOMER_NEEDS)

    assert result.problems == (Problem(0, "email", UNKNOWN_FIELD),)
    assert result.features.empty


def test_unknown_fields_are_reported_only_on_rows_that_have_them() -> None:
    frame = rows(VALID, {**VALID, "email": "a@example.com"}, VALID)

    result = validate(frame, CUSTOMER_NEEDS)

    assert result.problems == (Problem(1, "email", UNKNOWN_FIELD),)
    assert result.features.index.tolist() == [0, 2]


def test_unknown_fields_are_kept_out_of_the_features_when_allowed() -> None:
    frame = rows({**VALID, "email": "a@example.com", "note": ""})

    result = validate(frame, CUSTOMER_NEEDS, allow_extra=True)

    assert result.problems == ()
    assert list(result.features.columns) == ["age", "gender", "income"]


def test_every_fault_of_every_row_is_reported_sorted_by_row_then_schema_order() -> None:
    frame = rows(
        {"income": -1, "gender": "robot", "age": "old"},
        VALID,
        {"age": 35, "gender": "m", "income": 5, "zip": "12345"},
        {"gender": "f", "income": None},
    )

    result = validate(frame, CUSTOMER_NEEDS)

    assert result.problems == (
        Problem(0, "age", NOT_A_NUMBER, "old"),
        Problem(0, "gender", GENDERS, "robot"),
        Problem(0, "income", "must be between 0 and 1e+07", -1),
        Problem(2, "zip", UNKNOWN_FIELD),
        Problem(3, "age", MISSING),
        Problem(3, "income", MISSING),
    )
    assert result.rejected_rows == frozenset({0, 2, 3})


def test_valid_rows_keep_their_original_row_index() -> None:
    frame = rows({**VALID, "age": 1}, {**VALID, "age": 20}, {**VALID, "age": 2}, VALID)

    result = validate(frame, CUSTOMER_NEEDS)

    assert result.features.index.tolist() == [1, 3]
    assert result.features["age"].tolist() == [20.0, 35.0]
    assert [problem.row for problem in result.problems] == [0, 2]


def test_rows_are_named_by_the_frame_index() -> None:
    frame = rows({**VALID, "age": 1}, VALID)
    frame.index = pd.Index([10, 20])

    result = validate(frame, CUSTOMER_NEEDS)

    assert result.problems == (Problem(10, "age", AGE_RANGE, 1),)
    assert result.features.index.tolist() == [20]


def test_an_empty_frame_is_valid_and_empty() -> None:
    frame = pd.DataFrame({"age": [], "gender": [], "income": []}, dtype=object)

    result = validate(frame, CUSTOMER_NEEDS)

    assert result.problems == ()
    assert result.features.empty
    assert list(result.features.columns) == ["age", "gender", "income"]


def test_an_empty_frame_without_columns_is_valid_and_empty() -> None:
    result = validate(pd.DataFrame(), CUSTOMER_NEEDS)

    assert result.problems == ()
    assert len(result.features) == 0


def test_a_missing_column_is_reported_once_and_rejects_every_row() -> None:
    frame = pd.DataFrame({"age": [35, 40], "gender": ["f", "m"]}, dtype=object)

    result = validate(frame, CUSTOMER_NEEDS)

    assert result.problems == (Problem(None, "income", MISSING_COLUMN),)
    assert result.features.empty


def test_problems_without_a_row_come_first() -> None:
    frame = pd.DataFrame({"age": [1], "gender": ["f"]}, dtype=object)

    result = validate(frame, CUSTOMER_NEEDS)

    assert result.problems == (
        Problem(None, "income", MISSING_COLUMN),
        Problem(0, "age", AGE_RANGE, 1),
    )
    assert result.rejected_rows == frozenset({0})


def test_typed_columns_from_training_data_are_checked_too() -> None:
    frame = pd.DataFrame(
        {
            "sales": [1.5, np.nan, 3.0, np.inf],
            "population": np.array([1, 2, 3, 4], dtype=np.int64),
            "gdp": [True, True, True, True],
        }
    )

    result = validate(frame, MARKET_TREND)

    assert result.problems == (
        Problem(0, "gdp", NOT_A_NUMBER, True),
        Problem(1, "sales", MISSING),
        Problem(1, "gdp", NOT_A_NUMBER, True),
        Problem(2, "gdp", NOT_A_NUMBER, True),
        Problem(3, "sales", NOT_FINITE, "inf"),
        Problem(3, "gdp", NOT_A_NUMBER, True),
    )


def test_the_input_frame_is_not_modified() -> None:
    frame = rows({**VALID, "gender": " M ", "age": " 42 "})
    before = frame.copy()

    validate(frame, CUSTOMER_NEEDS)

    pd.testing.assert_frame_equal(frame, before)


# Properties: any valid row is accepted as canonical values; one bad field is the one reported.

WHITESPACE = st.text(alphabet=" \t\r\n", max_size=2)


def number_in(feature: NumericFeature) -> st.SearchStrategy[float]:
    return st.floats(feature.minimum, feature.maximum, allow_nan=False, allow_infinity=False)


def valid_number(feature: NumericFeature) -> st.SearchStrategy[object]:
    """Any spelling of an in-range number: int, float, or a numeric string in several formats."""
    floats = number_in(feature)
    ints = st.integers(math.ceil(feature.minimum), math.floor(feature.maximum))
    texts = st.tuples(
        WHITESPACE, st.one_of(floats, ints), st.sampled_from(["{!r}", "{:e}", "{:.3f}"]), WHITESPACE
    ).map(lambda parts: parts[0] + parts[2].format(parts[1]) + parts[3])
    return st.one_of(floats, ints, texts)


def valid_category(feature: CategoricalFeature) -> st.SearchStrategy[str]:
    spellings = sorted(feature.lookup())
    cases = st.sampled_from([str.lower, str.upper, str.title, str.capitalize])
    return st.tuples(WHITESPACE, st.sampled_from(spellings), cases, WHITESPACE).map(
        lambda parts: parts[0] + parts[2](parts[1]) + parts[3]
    )


def valid_value(feature: NumericFeature | CategoricalFeature) -> st.SearchStrategy[object]:
    if isinstance(feature, NumericFeature):
        return valid_number(feature)
    return valid_category(feature)


def canonical(feature: NumericFeature | CategoricalFeature, raw: object) -> object:
    if isinstance(feature, NumericFeature):
        return float(raw)  # type: ignore[arg-type]
    return feature.lookup()[str(raw).strip().casefold()]


ALWAYS_INVALID = st.sampled_from([ABSENT, None, "", "  ", True, False, [], [1], {}, {"a": 1}])


def invalid_number(feature: NumericFeature) -> st.SearchStrategy[object]:
    below = st.floats(max_value=feature.minimum, allow_nan=False).filter(
        lambda value: value < feature.minimum
    )
    above = st.floats(min_value=feature.maximum, allow_nan=False).filter(
        lambda value: value > feature.maximum
    )
    words = st.text(alphabet="abcdghjklmopqrsuvwyz!?_ ", min_size=1).filter(str.strip)
    not_finite = st.sampled_from(["nan", "NaN", "inf", "-inf", "Infinity", float("inf")])
    return st.one_of(
        ALWAYS_INVALID, below, above, below.map(repr), above.map(str), words, not_finite
    )


def invalid_category(feature: CategoricalFeature) -> st.SearchStrategy[object]:
    known = feature.lookup()
    unknown = st.text(min_size=1).filter(lambda text: text.strip().casefold() not in known)
    numbers = st.one_of(st.integers(), st.floats())
    return st.one_of(ALWAYS_INVALID, unknown.filter(str.strip), numbers)


def invalid_value(feature: NumericFeature | CategoricalFeature) -> st.SearchStrategy[object]:
    if isinstance(feature, NumericFeature):
        return invalid_number(feature)
    return invalid_category(feature)


@st.composite
def valid_rows(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    name = draw(st.sampled_from(["customer_needs", "market_trend"]))
    schema = CUSTOMER_NEEDS if name == "customer_needs" else MARKET_TREND
    return name, {feature.name: draw(valid_value(feature)) for feature in schema.features}


@settings(max_examples=150, deadline=None)
@given(valid_rows())
def test_property_any_valid_row_is_accepted_with_canonical_values(
    case: tuple[str, dict[str, object]],
) -> None:
    name, row = case
    schema = CUSTOMER_NEEDS if name == "customer_needs" else MARKET_TREND

    result = validate(rows(row), schema)

    assert result.problems == ()
    assert result.features.index.tolist() == [0]
    assert result.features.iloc[0].to_dict() == {
        feature.name: canonical(feature, row[feature.name]) for feature in schema.features
    }


@settings(max_examples=150, deadline=None)
@given(valid_rows(), st.data())
def test_property_one_invalid_field_is_exactly_the_one_reported(
    case: tuple[str, dict[str, object]], data: st.DataObject
) -> None:
    name, row = case
    schema = CUSTOMER_NEEDS if name == "customer_needs" else MARKET_TREND
    feature = data.draw(st.sampled_from(schema.features))
    bad = data.draw(invalid_value(feature))

    result = validate(rows(row, {**row, feature.name: bad}), schema)

    assert [(p.row, p.field) for p in result.problems] == [(1, feature.name)]
    assert result.features.index.tolist() == [0]
