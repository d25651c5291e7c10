"""Every path `predict` can take must give the same answers and the same faults.

Property tests feed the same rows through the validators, and through `predict` on each of its
paths: records (few rows), columns (a batch) and frame (a model without a serving form).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
from datetime import UTC, datetime

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import data
from models.compile import compile_pipeline
from models.recipes import RECIPES
from models.training import Trained, train
from shared.codecs import encode_table, read_csv
from shared.predict import SMALL_ROWS, Options, Prediction, predict
from shared.predict._compiled import CompiledModel
from shared.schema import CUSTOMER_NEEDS, MARKET_TREND
from shared.store import LoadedModel, LocalFolder, load_current, publish
from shared.validation import Rows, clean_columns, clean_records, validate, validate_records
from tests import expected
from tests.unit.bundled import bundled, pipeline_only

numbers = st.one_of(
    st.integers(-(10**6), 10**8),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.floats(min_value=18, max_value=100),
)
numeric_strings = st.one_of(
    numbers.map(str),
    st.sampled_from(
        [
            "",
            " ",
            " 42 ",
            "\t35\n",
            "4.2e1",
            "1e999",
            "nan",
            "-Infinity",
            "1_000",
            "0x1f",
            "42 years",
            "+.5",
            "5.",
            "١٢",
            "\u00a042",
            "$52,000",
            "52,000",
            "52000 EUR",
            "1.234.567,89 €",
            "a value far too long to be shown whole",
        ]
    ),
)
spellings = st.sampled_from(
    ["female", "F", " male ", "MAN", "x", "Diverse", "robot", "", " ", "f ", "nonbinary"]
)
anything = st.one_of(
    numbers,
    numeric_strings,
    spellings,
    st.booleans(),
    st.none(),
    st.just({"a": 1}),
    st.just([1, 2]),
)


def names(schema_keys: list[str]) -> list[str]:
    """The model's names, names it does not know, and misspellings of its own (a suggestion)."""
    return [*schema_keys, "extra", "email", schema_keys[0].upper(), schema_keys[-1][:-1]]


def instances(schema_keys: list[str]) -> st.SearchStrategy[list[dict[str, object]]]:
    row = st.dictionaries(st.sampled_from(names(schema_keys)), anything, max_size=5)
    return st.lists(row, min_size=0, max_size=6)


@st.composite
def columns_with_extras(
    draw: st.DrawFn, schema_keys: list[str]
) -> tuple[dict[str, list[object]], int]:
    """Columns as a CSV body gives them: any of the names, each with a value in every row."""
    count = draw(st.integers(1, 6))
    chosen = draw(st.lists(st.sampled_from(names(schema_keys)), unique=True, max_size=6))
    cells = st.lists(anything, min_size=count, max_size=count)
    return {name: draw(cells) for name in chosen}, count


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=instances(["age", "gender", "income"]))
def test_customer_validators_agree(rows):
    assert_validators_agree(rows, CUSTOMER_NEEDS)


@settings(max_examples=200, deadline=None)
@given(rows=instances(["sales", "population", "gdp"]))
def test_market_validators_agree(rows):
    assert_validators_agree(rows, MARKET_TREND)


@settings(max_examples=200, deadline=None)
@given(table=columns_with_extras(["age", "gender", "income"]))
def test_validators_agree_when_extra_columns_are_ignored(table):
    columns, count = table
    rows = Rows.of_columns(columns, count, allow_extra=True)
    records = rows.as_records(CUSTOMER_NEEDS.feature_names)  # the extras left out

    _, kept, fast = validate_records(records, CUSTOMER_NEEDS, allow_extra=True, sent=rows.names)
    batch = validate(rows.frame(), CUSTOMER_NEEDS, allow_extra=True)

    assert fast == batch.problems
    assert kept == batch.features.index.tolist()


def assert_validators_agree(rows, schema):
    fast_rows, numbers_kept, fast_problems = validate_records(rows, schema)

    batch = validate(Rows.of_records(rows).frame(), schema)

    assert fast_problems == batch.problems
    assert numbers_kept == batch.features.index.tolist()
    for fast, (_, slow) in zip(fast_rows, batch.features.iterrows(), strict=True):
        for name in schema.feature_names:
            if isinstance(fast[name], float):
                assert fast[name] == slow[name] or (
                    math.isnan(fast[name]) and math.isnan(slow[name])
                )
            else:
                assert fast[name] == slow[name]


def trained_variants():
    """Every candidate the training compares, fitted, and the bundled models."""
    customers = data.customers(600, seed=2, dirty=False)
    markets = data.macro()
    for name, frame in (("customer_needs", customers), ("market_trend", markets)):
        recipe = RECIPES[name]
        models = {**recipe.candidates(()), "baseline": recipe.baseline(())}
        for candidate, model in models.items():
            features = frame[list(recipe.schema.feature_names)].iloc[:-1]
            yield name, candidate, model.fit(features, frame[recipe.schema.target].iloc[:-1])
    for name in ("customer_needs", "market_trend"):
        yield name, "bundled", bundled(name).pipeline


@pytest.mark.parametrize(
    ("name", "candidate", "pipeline"),
    list(trained_variants()),
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_serving_form_predicts_what_scikit_learn_predicts(name, candidate, pipeline):
    compiled = CompiledModel(compile_pipeline(pipeline))
    frame = (
        data.customers(500, seed=9, dirty=False)[["age", "gender", "income"]]
        if name == "customer_needs"
        else data.markets(500, seed=9)[["sales", "population", "gdp"]]
    )

    fast = np.asarray(compiled.predict(frame.to_dict(orient="records")))
    slow = np.asarray(pipeline.predict(frame))

    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=0)


@pytest.fixture(scope="module")
def market_model() -> Trained:
    """The market recipe trained once for the tests that publish it with their own changes."""
    return train(RECIPES["market_trend"], data.macro(), "v", datetime(2026, 1, 1, tzinfo=UTC))


def test_a_model_published_without_a_serving_form_is_served_by_scikit_learn(
    tmp_path, market_model: Trained
):
    metadata = {**market_model.metadata, "serving": None}
    publish(LocalFolder(tmp_path), "market_trend", "v", market_model.artifact, metadata)

    model = load_current(LocalFolder(tmp_path), "market_trend")

    assert model.serving is None
    frame = data.macro()[["sales", "population", "gdp"]][:5]
    expected = joblib.load(io.BytesIO(market_model.artifact)).predict(frame)
    np.testing.assert_allclose(model.pipeline.predict(frame), expected)


def test_a_tampered_serving_form_is_not_trusted(tmp_path, market_model: Trained):
    store = LocalFolder(tmp_path)
    publish(store, "market_trend", "v", market_model.artifact, market_model.metadata)
    path = tmp_path / "market_trend" / "v" / "metadata.json"
    path.write_bytes(path.read_bytes().replace(b'"intercept":', b'"intercept": 1e6, "x":'))

    model = load_current(store, "market_trend")

    assert model.serving is None  # its sha256 no longer matches current.json


def every_path(model: LoadedModel, rows: list[dict[str, object]]) -> dict[str, Prediction]:
    """The same rows through each path of `predict`, valid rows predicted, faults named.

    The columns path is taken by repeating the rows past SMALL_ROWS; its answers for the
    first copy are kept.
    """
    copies = SMALL_ROWS // max(len(rows), 1) + 1
    found = {
        "columns": _first_copy(
            predict(model, Rows.of_records(rows * copies), Options(), all_or_nothing=False),
            len(rows),
        ),
        "frame": predict(
            pipeline_only(model),
            Rows.of_records(rows),
            Options(),
            all_or_nothing=False,
        ),
    }
    if len(rows) <= SMALL_ROWS:
        found["records"] = predict(model, Rows.of_records(rows), Options(), all_or_nothing=False)
    return found


def _first_copy(prediction: Prediction, count: int) -> Prediction:
    positions = np.asarray(prediction.positions)
    keep = positions < count
    assert prediction.outside is not None
    return dataclasses.replace(
        prediction,
        positions=positions[keep],
        values=np.asarray(prediction.values)[keep],
        problems=tuple(p for p in prediction.problems if p.row is None or p.row < count),
        outside=prediction.outside.keep(keep),
    )


def assert_paths_agree(model: LoadedModel, rows: list[dict[str, object]]) -> None:
    found = every_path(model, rows)
    reference = found.pop("frame")
    for path, prediction in found.items():
        assert prediction.problems == reference.problems, path
        assert list(prediction.positions) == list(reference.positions), path
        np.testing.assert_allclose(
            np.asarray(prediction.values, dtype=float),
            np.asarray(reference.values, dtype=float),
            rtol=1e-9,
            atol=0,
            err_msg=path,
        )
        assert prediction.outside is not None
        assert reference.outside is not None
        assert prediction.outside.names() == reference.outside.names(), path


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=instances(["age", "gender", "income"]),
    clean=st.lists(
        st.fixed_dictionaries(
            {
                "age": st.integers(18, 100) | st.floats(18, 100),
                "gender": st.sampled_from(["female", "F", " male ", "x", "Diverse"]),
                "income": st.integers(0, 10**7) | st.floats(0, 1e7),
            }
        ),
        min_size=1,
        max_size=80,
    ),
)
def test_every_path_gives_the_same_answers_and_faults(rows, clean):
    model = bundled("customer_needs")
    for batch in (clean, clean + rows):
        assert_paths_agree(model, batch)
    assert clean_records(clean, model.schema) is not None  # clean rows need no reference


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=instances(["sales", "population", "gdp"]))
def test_every_market_path_gives_the_same_answers_and_faults(rows):
    assert_paths_agree(bundled("market_trend"), rows)


def test_market_clean_batches_agree():
    model = bundled("market_trend")
    frame = data.markets(300, seed=4)[["sales", "population", "gdp"]]
    objects = frame.to_dict(orient="records")

    assert clean_records(objects, model.schema) is not None
    prediction = predict(model, Rows.of_records(objects), Options())
    np.testing.assert_allclose(prediction.values, model.pipeline.predict(frame), rtol=1e-9)


def test_an_integer_too_large_for_a_float_is_named_on_both_paths():
    rows = [{"age": 10**400, "gender": "f", "income": 1000}]

    _, _, fast = validate_records(rows, CUSTOMER_NEEDS)
    slow = validate(Rows.of_records(rows).frame(), CUSTOMER_NEEDS).problems

    assert fast == slow
    assert [p.reason for p in fast] == ["must be a finite number"]
    assert clean_records(rows, CUSTOMER_NEEDS) is None
    assert_paths_agree(bundled("customer_needs"), rows)


text_cells = st.text(alphabet=st.sampled_from(list('ab ,"\n=+-@é1')), max_size=8)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(
            st.integers(18, 100) | st.floats(18, 100).map(lambda v: round(v, 3)),
            st.sampled_from(["female", "F", " male ", "x", "Diverse"]),
            st.integers(0, 10**7),
            text_cells,
        ),
        min_size=1,
        max_size=100,
    ),
    interval=st.sampled_from([None, 0.8]),
)
def test_csv_answers_are_what_pandas_writes_for_the_pipelines_predictions(rows, interval):
    model = bundled("customer_needs")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["note", "income", "gender", "age"])
    writer.writerows([note, income, gender, age] for age, gender, income, note in rows)
    table = read_csv(out.getvalue().encode(), 1000)
    options = Options(interval=interval)

    _, clean = clean_columns(table.columns(), len(table), model.schema)
    assert clean.all()
    fast = encode_table(table, predict(model, table.rows(model.schema), options).columns()).decode()

    frame = pd.DataFrame(table.columns(), dtype=object)
    features = validate(frame, model.schema, allow_extra=True).features
    canonical = features[list(model.schema.feature_names)].to_dict(orient="records")
    metadata = model.metadata
    predicted = [expected.in_domain(metadata, v) for v in model.pipeline.predict(features)]
    reference = pd.DataFrame({"purchase_amount": predicted})
    if interval is not None:
        bounds = expected.intervals(metadata, canonical, predicted, interval)
        reference["purchase_amount_lower"] = [None if b is None else b[0] for b in bounds]
        reference["purchase_amount_upper"] = [None if b is None else b[1] for b in bounds]
    reference["outside_training_range"] = [
        ";".join(expected.outside(metadata, row)) for row in canonical
    ]
    slow = frame.join(reference).to_csv(index=False, lineterminator="\r\n")

    fast_rows, slow_rows = list(csv.reader(io.StringIO(fast))), list(csv.reader(io.StringIO(slow)))
    assert fast_rows[0] == slow_rows[0]
    for mine, theirs in zip(fast_rows[1:], slow_rows[1:], strict=True):
        assert mine[:4] == theirs[:4]  # every cell as sent
        assert mine[-1] == theirs[-1]  # the features outside the training range
        numbers, wanted = mine[4:-1], theirs[4:-1]
        assert [v == "" for v in numbers] == [v == "" for v in wanted]  # withheld: empty
        np.testing.assert_allclose(
            [float(v) for v in numbers if v], [float(v) for v in wanted if v], rtol=1e-9
        )


def test_a_csv_cell_that_needs_the_reference_leaves_the_column_path():
    model = bundled("customer_needs")
    for body in (
        b"age,gender,income\n35,f,1\nabc,f,1\n",
        b"age,gender,income\n35,robot,1\n",
        b"age,gender\n35,f\n",
        b"age,gender,income\n300,f,1\n",
    ):
        table = read_csv(body, 10)
        _, clean = clean_columns(table.columns(), len(table), model.schema)
        assert not clean.all()
