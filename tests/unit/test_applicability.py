"""Which rows lie outside the training range, and what `strict` makes of them, on every path.

The same rows go through `predict` by record (few rows), by column (a batch, sent as records
or as columns) and by frame (a model without a serving form); each must flag the same features
of the same rows, and with `strict` reject the same rows with the same faults. tests/expected.py
says independently which features a row has outside what metadata.json's `training.ranges`
recorded.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.errors import InvalidInput, Problem
from shared.predict import OUTSIDE, SMALL_ROWS, Options, Prediction, predict
from shared.store import LoadedModel
from shared.validation import Rows, validate_records
from tests import expected
from tests.unit.bundled import bundled, pipeline_only

STRICT = "(strict)"

Record = dict[str, Any]


def with_metadata(model: LoadedModel, **changes: Any) -> LoadedModel:
    return dataclasses.replace(model, metadata={**model.metadata, **changes})


def with_ranges(model: LoadedModel, ranges: Mapping[str, Any] | None) -> LoadedModel:
    """`model` trained, as its metadata says, on other ranges (None: none recorded)."""
    training = {k: v for k, v in model.metadata["training"].items() if k != "ranges"}
    if ranges is not None:
        training["ranges"] = ranges
    return with_metadata(model, training=training)


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a path answered, in terms every path shares: per predicted row, its position and
    the features outside; and every fault."""

    positions: list[int]
    outside: list[list[str]]
    problems: tuple[Problem, ...]


def answer(prediction: Prediction, offset: int = 0) -> Answer:
    assert prediction.outside is not None
    assert prediction.outside.count == len(prediction)
    return Answer(
        [int(p) + offset for p in prediction.positions],
        prediction.outside.names(),
        tuple(
            dataclasses.replace(p, row=None if p.row is None else p.row + offset)
            for p in prediction.problems
        ),
    )


def by_records(model: LoadedModel, rows: Sequence[Record], options: Options) -> Answer:
    """The records path, SMALL_ROWS rows at a time, renumbered as one batch."""
    parts = []
    for start in range(0, len(rows), SMALL_ROWS):
        chunk = Rows.of_records(rows[start : start + SMALL_ROWS])
        prediction = predict(model, chunk, options, all_or_nothing=False)
        assert isinstance(prediction.values, list)  # plain Python: the records path
        parts.append(answer(prediction, start))
    return Answer(
        [p for part in parts for p in part.positions],
        [names for part in parts for names in part.outside],
        tuple(p for part in parts for p in part.problems),
    )


def every_path(model: LoadedModel, rows: Sequence[Record], options: Options) -> dict[str, Answer]:
    assert len(rows) > SMALL_ROWS  # so that a batch takes the columns path
    names = model.schema.feature_names
    columns = {name: [row[name] for row in rows] for name in names}
    batches = {
        "columns from records": predict(
            model, Rows.of_records(rows), options, all_or_nothing=False
        ),
        "columns from columns": predict(
            model, Rows.of_columns(columns, len(rows)), options, all_or_nothing=False
        ),
        "frame": predict(
            pipeline_only(model), Rows.of_records(rows), options, all_or_nothing=False
        ),
    }
    assert all(isinstance(p.values, np.ndarray) for p in batches.values())
    return {
        "records": by_records(model, rows, options),
        **{path: answer(prediction) for path, prediction in batches.items()},
    }


def reference(model: LoadedModel, rows: Sequence[Record]) -> Answer:
    """The flags tests/expected.py gives the rows the record validator accepts (no strict)."""
    canonical, positions, problems = validate_records(rows, model.schema)
    outside = [expected.outside(model.metadata, row) for row in canonical]
    return Answer(list(positions), outside, problems)


def strict_reference(model: LoadedModel, rows: Sequence[Record]) -> Answer:
    """What `strict` should make of the reference: the flagged rows become one fault per
    feature outside, in row order after the validation faults of earlier rows."""
    lenient = reference(model, rows)
    faults = [
        Problem(position, name, f"outside the {describe(model, name)} {STRICT}")
        for position, names in zip(lenient.positions, lenient.outside, strict=True)
        for name in names
    ]
    problems = sorted([*lenient.problems, *faults], key=lambda p: -1 if p.row is None else p.row)
    kept = [p for p, names in zip(lenient.positions, lenient.outside, strict=True) if not names]
    return Answer(kept, [[] for _ in kept], tuple(problems))


def describe(model: LoadedModel, feature: str) -> str:
    return expected.trained_range(model.metadata, feature)


def assert_every_path_gives(
    model: LoadedModel, rows: Sequence[Record], options: Options, wanted: Answer
) -> None:
    for path, got in every_path(model, rows, options).items():
        assert got.problems == wanted.problems, path
        assert got.positions == wanted.positions, path
        assert got.outside == wanted.outside, path


def repeated(rows: list[Record]) -> list[Record]:
    """The rows repeated past SMALL_ROWS."""
    return rows * (SMALL_ROWS // len(rows) + 1)


# Properties: every path flags and rejects the same rows as tests/expected.py


customer_rows = st.fixed_dictionaries(
    {
        "age": st.integers(18, 100) | st.floats(18, 100) | st.sampled_from([" 89.5 ", "17", "?"]),
        "gender": st.sampled_from(["female", "F", " male ", "x", "Other", "robot"]),
        "income": st.integers(0, 10**7)
        | st.floats(0, 1e7)
        | st.floats(0, 400_000)
        | st.sampled_from(["6900", "-1", ""]),
    }
)
# Positive values only: a market feature of exactly 0 passes validation but the forecaster,
# which works on logs, cannot predict it (reported as a product bug, not tested here).
market_rows = st.fixed_dictionaries(
    {
        "sales": st.floats(1, 20_000) | st.sampled_from(["1707.4", "9363.6", "-1"]),
        "population": st.floats(1, 500),
        "gdp": st.floats(1, 30_000) | st.just(None),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(customer_rows, min_size=1, max_size=30).map(repeated))
def test_every_customer_path_flags_the_same_features_of_the_same_rows(rows):
    model = bundled("customer_needs")

    assert_every_path_gives(model, rows, Options(), reference(model, rows))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(customer_rows, min_size=1, max_size=30).map(repeated))
def test_every_customer_path_rejects_the_same_rows_under_strict(rows):
    model = bundled("customer_needs")

    assert_every_path_gives(model, rows, Options(strict=True), strict_reference(model, rows))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(market_rows, min_size=1, max_size=30).map(repeated))
def test_every_market_path_flags_and_rejects_the_same_rows(rows):
    model = bundled("market_trend")

    assert_every_path_gives(model, rows, Options(), reference(model, rows))
    assert_every_path_gives(model, rows, Options(strict=True), strict_reference(model, rows))


# Examples


def edges(model: LoadedModel) -> list[Record]:
    """Rows on each end of the customer model's trained ranges, and just past them."""
    ranges = model.metadata["training"]["ranges"]
    age, income = ranges["age"], ranges["income"]
    below = math.nextafter(income["min"], -math.inf)
    above = math.nextafter(age["max"], math.inf)
    return [
        {"age": age["min"], "gender": "F", "income": income["min"]},
        {"age": age["max"], "gender": "M", "income": income["max"]},
        {"age": above, "gender": "F", "income": 50_000},
        {"age": 40, "gender": "F", "income": below},
        {"age": above, "gender": "F", "income": below},
    ]


def test_the_ends_of_a_trained_range_are_inside_it_and_just_past_them_is_not():
    model = bundled("customer_needs")
    rows = repeated(edges(model))

    for path, got in every_path(model, rows, Options()).items():
        assert got.outside[:5] == [[], [], ["age"], ["income"], ["age", "income"]], path


def test_a_category_unseen_in_training_is_flagged_on_every_path():
    model = bundled("customer_needs")
    counts = model.metadata["training"]["ranges"]["gender"]
    for unseen in ({**counts, "other": 0}, {k: v for k, v in counts.items() if k != "other"}):
        ranges = {**model.metadata["training"]["ranges"], "gender": unseen}
        narrowed = with_ranges(model, ranges)
        rows = repeated(
            [
                {"age": 40, "gender": "x", "income": 50_000},
                {"age": 40, "gender": "female", "income": 50_000},
                {"age": 40, "gender": "Non-Binary", "income": 1e7},
            ]
        )

        flagged = every_path(narrowed, rows, Options())
        rejected = every_path(narrowed, rows, Options(strict=True))

        for path, got in flagged.items():
            assert got.outside[:3] == [["gender"], [], ["gender", "income"]], path
        reason = f"outside the categories seen in training: female, male {STRICT}"
        for path, got in rejected.items():
            assert got.problems[0] == Problem(0, "gender", reason), path
            assert got.positions == list(range(1, len(rows), 3)), path
        assert reference(narrowed, rows).outside == flagged["records"].outside


def test_an_unseen_category_withholds_the_interval_and_is_named_in_every_output():
    model = with_ranges(
        bundled("customer_needs"),
        {**bundled("customer_needs").metadata["training"]["ranges"], "gender": {"female": 9}},
    )
    rows = [{"age": 40, "gender": g, "income": 50_000} for g in ("F", "M", "x")]

    prediction = predict(model, Rows.of_records(rows), Options(interval=0.9))

    assert prediction.columns()[OUTSIDE] == ["", "gender", "gender"]
    assert [item[OUTSIDE] for item in prediction.objects()] == [[], ["gender"], ["gender"]]
    assert [prediction.interval.lower[i] is None for i in range(3)] == [False, True, True]


def test_a_model_whose_metadata_has_no_training_ranges_flags_nothing():
    original = bundled("customer_needs")
    model = with_ranges(original, None)
    far = [{"age": 100, "gender": "x", "income": 1e7}, {"age": 18, "gender": "M", "income": 0}]
    rows = repeated(far)
    canonical = [
        {**row, "gender": gender} for row, gender in zip(far, ["other", "male"], strict=True)
    ]
    assert all(expected.outside(original.metadata, row) for row in canonical)  # far outside

    flagged = every_path(model, rows, Options())

    everything = list(range(len(rows)))
    for path in flagged:
        assert flagged[path] == Answer(everything, [[] for _ in rows], ()), path
    with pytest.raises(InvalidInput, match="not available") as refused:
        predict(model, Rows.of_records(rows), Options(strict=True))
    assert [p.field for p in refused.value.problems] == ["parameters.strict"]
    with_interval = predict(model, Rows.of_records(rows), Options(interval=0.9))
    assert not np.isnan(with_interval.interval.lower).any()  # nothing to withhold it for
    assert set(with_interval.columns()[OUTSIDE]) == {""}


def test_strict_turns_only_the_flagged_rows_into_faults():
    model = bundled("customer_needs")
    rows = repeated([*edges(model), {"age": 17, "gender": "F", "income": 50_000}])

    lenient = every_path(model, rows, Options())
    strict = every_path(model, rows, Options(strict=True))

    for path in lenient:
        flagged = {
            p
            for p, names in zip(lenient[path].positions, lenient[path].outside, strict=True)
            if names
        }
        assert flagged
        assert set(strict[path].positions) == set(lenient[path].positions) - flagged, path
        rows_at_fault = {p.row for p in strict[path].problems if p.reason.endswith(STRICT)}
        assert rows_at_fault == flagged, path
        others = [p for p in strict[path].problems if not p.reason.endswith(STRICT)]
        assert others == list(lenient[path].problems), path  # the validation faults, unchanged


def test_strict_on_a_request_answers_nothing_when_one_row_is_outside():
    model = bundled("customer_needs")
    rows = [{"age": 40, "gender": "F", "income": 50_000}, {"age": 40, "gender": "F", "income": 1e7}]

    for count in (2, 2 * SMALL_ROWS):
        prediction = predict(model, Rows.of_records(rows * (count // 2)), Options(strict=True))

        assert len(prediction) == 0
        assert {(p.row % 2, p.field) for p in prediction.problems} == {(1, "income")}
        assert len(prediction.problems) == count // 2


@pytest.mark.parametrize("name", ["customer_needs", "market_trend"])
def test_the_bundled_models_record_a_range_for_every_feature(name: str):
    model = bundled(name)
    ranges = model.metadata["training"]["ranges"]

    assert list(ranges) == list(model.schema.feature_names)
    example = model.metadata["example_instance"]
    assert expected.outside(model.metadata, example) == []  # a training row is inside
