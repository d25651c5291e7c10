"""Retraining's pure parts: the layout, claims, reading, measuring, gates, decision and report,
and the challenger measured on exactly the rows `train` held out."""

from __future__ import annotations

import dataclasses
import gzip
import io
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import joblib
import numpy as np
import orjson
import pandas as pd
import pytest

from models import data
from models.recipes import RECIPES, SEED_MODEL, Recipe
from models.retraining.challenger import MIN_EVALUATION_ROWS, challenge, prepare, training_frame
from models.retraining.claims import (
    TrainingUpload,
    claim_document,
    claim_is_stale,
    parse_event,
    run_names,
)
from models.retraining.gates import (
    Evaluation,
    Gate,
    Policy,
    Scores,
    coverage_gate,
    finite_gate,
    gate_decision,
    gates,
    improvement_gate,
    schema_differences,
    schema_gate,
    scores,
)
from models.retraining.lineage import (
    object_source,
    recorded_sources,
    retraining_record,
    verified_earlier,
)
from models.retraining.reading import TooManyLines, parse_csv, read_capped, too_many_rows
from models.retraining.report import (
    BAD_DATA,
    PROMOTED,
    TOO_FEW_ROWS,
    TOO_MANY_ROWS,
    UNFINISHED,
    UNTRAINABLE,
    Outcome,
    refusal_decision,
    report,
)
from models.training import OUTLIER_REASON, fingerprint, train
from shared.codecs import WRONG_DELIMITER, CsvRefused, match_columns
from shared.errors import one_line
from shared.schema import CUSTOMER_NEEDS, MARKET_TREND
from shared.settings import SettingsError, from_env
from shared.store import LocalFolder, load_current, publish
from shared.uploads import (
    EMPTY,
    MISSING_COLUMNS,
    NOT_GZIP,
    NOT_UTF8,
    REPEATED_COLUMN,
    FileProblem,
    Ignored,
    encode_report,
)
from tests import expected

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
FINALIZED = "google.cloud.storage.object.v1.finalized"
POLICY = Policy(
    min_improvement=0.02,
    coverage_tolerance=0.05,
    join_current=False,
    max_rows=10,
    claim_seconds=600,
)


def event(name: str, **data: object) -> tuple[dict[str, object], dict[str, object]]:
    attributes = {"type": FINALIZED, "id": "e-1", "time": "2026-11-28T11:59:00Z"}
    return attributes, {"bucket": "data", "name": name, "generation": "17", **data}


def fast(name: str) -> Recipe:
    """The product's recipe with only its seed candidate: the same training, in a fraction."""
    recipe = RECIPES[name]
    return dataclasses.replace(
        recipe, candidates=lambda exclude: {SEED_MODEL: recipe.baseline(exclude)}
    )


OUTLIER = OUTLIER_REASON


def measured(
    rmse: float,
    coverage: float | None = 0.9,
    non_finite: int = 0,
    worst: dict[str, object] | None = None,
) -> Scores:
    return Scores(
        rmse=rmse, mae=rmse, r2=0.5, non_finite=non_finite, coverage=coverage, worst_group=worst
    )


def worst_group(coverage: float) -> dict[str, object]:
    return {"feature": "income", "group": "(92900, 319200]", "rows": 386, "coverage": coverage}


# Which uploads start a run, and where a run writes


def test_a_labelled_csv_under_training_names_a_run() -> None:
    upload = parse_event(*event("training/customer_needs/crm/q4.csv.gz"))

    assert upload == TrainingUpload(
        event_id="e-1",
        event_time=datetime(2026, 11, 28, 11, 59, tzinfo=UTC),
        bucket="data",
        name="training/customer_needs/crm/q4.csv.gz",
        generation=17,
        model="customer_needs",
        relative_name="crm/q4.csv.gz",
    )
    assert isinstance(upload, TrainingUpload)
    names = run_names(upload)
    assert names.report == "retraining/customer_needs/crm/q4.csv.gz/17/report.json"
    assert names.claim(2) == "retraining/customer_needs/crm/q4.csv.gz/17/claim-2.json"


@pytest.mark.parametrize(
    "name",
    [
        "incoming/customer_needs/customers.csv",  # scoring's uploads
        "results/customer_needs/customers.csv/1/report.json",
        "retraining/customer_needs/q4.csv/17/report.json",  # its own outputs
        "retraining/customer_needs/q4.csv/17/claim-1.json",
        "training/q4.csv",  # no model folder
        "training/customer_needs/",
        "training/customer_needs/readme.txt",
    ],
)
def test_everything_else_is_ignored(name: str) -> None:
    assert isinstance(parse_event(*event(name)), Ignored)


def test_other_events_and_malformed_data_are_ignored() -> None:
    attributes, data_ = event("training/customer_needs/q4.csv")

    assert isinstance(parse_event({**attributes, "type": "other"}, data_), Ignored)
    assert isinstance(parse_event(attributes, {**data_, "generation": "x"}), Ignored)
    assert isinstance(parse_event(attributes, "not an object"), Ignored)


def test_a_name_too_long_for_its_claims_is_ignored() -> None:
    name = "training/customer_needs/" + "a" * 980 + ".csv"

    assert isinstance(parse_event(*event(name)), Ignored)


# Claims


def test_a_claim_is_live_until_a_run_could_no_longer_be_running() -> None:
    claim = claim_document("run-1", 1, "e-1", NOW)

    assert orjson.loads(claim)["run_id"] == "run-1"
    assert not claim_is_stale(claim, NOW + timedelta(seconds=599), 600)
    assert claim_is_stale(claim, NOW + timedelta(seconds=601), 600)
    assert claim_is_stale(b"not json", NOW, 600)
    assert claim_is_stale(b'{"claimed_at": "yesterday"}', NOW, 600)


# Reading the file


@pytest.mark.parametrize(
    "text",
    [b"h\n1\n2\n3\n", b"h\r\n1\r\n2\r\n3\r\n", b"h\n1\n2\n3"],
    ids=["lf", "crlf", "no final newline"],
)
def test_a_file_at_the_limit_is_read_whole(text: bytes) -> None:
    assert read_capped(io.BytesIO(text), 3) == text
    assert read_capped(io.BufferedReader(io.BytesIO(gzip.compress(text))), 3) == text


@pytest.mark.parametrize("text", [b"h\n1\n2\n3\n4\n", b"h\n1\n2\n3\n4"])
def test_one_line_over_the_limit_is_refused(text: bytes) -> None:
    with pytest.raises(TooManyLines):
        read_capped(io.BytesIO(text), 3)


def test_a_large_file_is_read_only_until_it_is_known_to_be_too_large() -> None:
    class Counting(io.RawIOBase):
        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
            chunk = b"35,F,52000,900\n" * (len(buffer) // 15)
            buffer[: len(chunk)] = chunk
            self.served += len(chunk)
            return len(chunk)

    endless = Counting()

    with pytest.raises(TooManyLines):
        read_capped(io.BufferedReader(endless), 1000)

    assert endless.served < 4 * 1024 * 1024


def test_a_broken_gzip_is_refused_as_bad_data() -> None:
    broken = gzip.compress(b"age,gender\n" * 1000)[:-30]

    with pytest.raises(FileProblem) as refused:
        read_capped(io.BytesIO(broken), 10_000)

    assert refused.value.code == NOT_GZIP
    assert refusal_decision(refused.value) == BAD_DATA


def test_columns_are_found_by_name_and_others_never_loaded() -> None:
    text = "\ufeffcustomer_id, Income ,AGE,gender,Purchase_Amount\nC-1,52000,35,F,900.5\n"

    frame = parse_csv(text.encode(), CUSTOMER_NEEDS)

    assert list(frame.columns) == ["age", "gender", "income", "purchase_amount"]
    assert frame.iloc[0].tolist() == [35, "F", 52000, 900.5]


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"age,gender,income\n35,F,52000\n", MISSING_COLUMNS, "no column purchase_amount"),
        (b"", EMPTY, "empty"),
        ("age,gender,income,purchase_amount\n35,\xe9,1,2\n".encode("latin-1"), NOT_UTF8, "UTF-8"),
        (b"age,AGE,gender,income,purchase_amount\n1,2,F,3,4\n", REPEATED_COLUMN, "age twice"),
        (b"age|gender|income|purchase_amount\n1|F|3|4\n", WRONG_DELIMITER, "pipes"),
        (b"age,gender,incme,purchase_amount\n35,F,3,4\n", MISSING_COLUMNS, "no column income"),
    ],
)
def test_unusable_files_are_refused_with_a_reason(data: bytes, code: str, words: str) -> None:
    with pytest.raises(FileProblem) as refused:
        parse_csv(data, CUSTOMER_NEEDS)

    assert refused.value.code == code
    assert words in refused.value.message


@pytest.mark.parametrize(
    "data",
    [
        b"\xef\xbb\xbfAge;Gender;Income;Purchase Amount\r\n35;F;52000,5;900,25\r\n",
        b"age\tgender\tincome\tpurchase_amount\n35\tF\t52000.5\t900.25\n",
        b'\n\n age , gender,income,purchase_amount,notes\n35,F,52000.5,900.25,"a, b"\n',
    ],
    ids=["European Excel", "tab paste", "blank lines first"],
)
def test_training_files_are_read_in_the_layouts_an_upload_is(data: bytes) -> None:
    frame = parse_csv(data, CUSTOMER_NEEDS)

    assert list(frame.columns) == ["age", "gender", "income", "purchase_amount"]
    assert frame.iloc[0].tolist() == [35, "F", 52000.5, 900.25]


def test_a_training_file_is_refused_in_the_words_a_scored_upload_gets() -> None:
    data = b"age;gender;incme;purchase_amount\n35;F;1;2\n"
    header = ["age", "gender", "incme", "purchase_amount"]

    with pytest.raises(FileProblem) as refused:
        parse_csv(data, CUSTOMER_NEEDS)
    with pytest.raises(CsvRefused) as scored:
        match_columns(header, ["age", "gender", "income", "purchase_amount"])

    assert (refused.value.code, refused.value.message) == (scored.value.code, scored.value.message)
    assert 'is "incme" meant to be income?' in one_line("", scored.value.problems)


def test_too_many_rows_says_which_limit_and_how_to_stay_under_it() -> None:
    alone, joined = too_many_rows(1000, 0), too_many_rows(1000, 400)

    assert (alone.code, refusal_decision(alone)) == (TOO_MANY_ROWS, "refused: too many rows")
    assert "more than 1000 data lines" in alone.message
    assert "400 rows joined" in joined.message
    assert "RETRAIN_JOIN_CURRENT" in joined.message


# Measuring


def test_scores_are_the_textbook_formulas() -> None:
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([1.5, 2.0, 2.0, 4.0])
    bounds = (predicted - 0.6, predicted + 0.6)  # errors 0.5, 0, 1, 0: three rows inside

    measured_ = scores(actual, predicted, bounds)

    assert measured_.rmse == pytest.approx(math.sqrt((0.25 + 0 + 1 + 0) / 4), abs=1e-6)
    assert measured_.mae == pytest.approx(1.5 / 4, abs=1e-6)
    assert measured_.r2 == pytest.approx(1 - 1.25 / 5, abs=1e-6)
    assert measured_.non_finite == 0
    assert measured_.coverage == 0.75
    assert measured_.worst_group is None


def test_coverage_counts_only_the_rows_given_an_interval() -> None:
    actual = np.array([1.0, 2.0, 3.0, 4.0])
    predicted = np.array([1.5, 2.0, 2.0, 4.0])
    lower, upper = predicted - 0.6, predicted + 0.6
    lower[2] = upper[2] = np.nan  # withheld: the row was outside the training range

    measured_ = scores(actual, predicted, (lower, upper), worst_group(0.8))

    assert measured_.coverage == 1.0  # the one row outside its interval had none
    assert measured_.rmse == pytest.approx(math.sqrt(1.25 / 4), abs=1e-6)  # every row counts
    assert measured_.to_dict()["worst_group_coverage"] == worst_group(0.8)


def test_non_finite_predictions_are_counted_and_make_errors_infinite() -> None:
    measured_ = scores(np.array([1.0, 2.0]), np.array([1.0, np.nan]), None)

    assert measured_.non_finite == 1
    assert measured_.rmse == math.inf
    assert measured_.coverage is None
    assert measured_.to_dict()["rmse"] is None  # JSON has no infinity


# Gates


def test_schemas_equal_as_json_pass() -> None:
    stored = orjson.loads(orjson.dumps(CUSTOMER_NEEDS.to_dict()))

    assert schema_gate(CUSTOMER_NEEDS.to_dict(), stored).passed
    assert schema_gate(CUSTOMER_NEEDS.to_dict(), None).passed


def test_a_schema_difference_fails_and_names_what_differs() -> None:
    changed = CUSTOMER_NEEDS.to_dict()
    changed["features"][0]["maximum"] = 120

    gate = schema_gate(CUSTOMER_NEEDS.to_dict(), changed)

    assert not gate.passed
    assert gate.numbers["differing"] == ["age"]
    assert schema_differences(CUSTOMER_NEEDS.to_dict(), MARKET_TREND.to_dict()) == [
        "age", "gdp", "gender", "income", "population", "sales", "target",
    ]  # fmt: skip


def test_finite_gate_counts_what_is_not_finite() -> None:
    assert finite_gate(measured(1.0), 500).passed
    gate = finite_gate(measured(math.inf, non_finite=3), 500)
    assert not gate.passed
    assert gate.detail == "3 of 500 predictions are NaN or infinite"


@pytest.mark.parametrize(
    ("challenger", "current", "passed"),
    [
        (98.0, 100.0, True),  # exactly the margin
        (98.1, 100.0, False),
        (100.0, 100.0, False),
        (120.0, 100.0, False),
        (10.0, 100.0, True),
        (10.0, math.inf, True),
        (math.inf, 100.0, False),
    ],
)
def test_improvement_gate_needs_the_margin(challenger: float, current: float, passed: bool) -> None:
    gate = improvement_gate(measured(challenger), measured(current), margin=0.02)

    assert gate.passed is passed
    assert gate.numbers["required_improvement"] == 0.02


def test_improvement_gate_reports_its_numbers() -> None:
    gate = improvement_gate(measured(90.0), measured(100.0), margin=0.02)

    assert gate.numbers == {
        "challenger_rmse": 90.0,
        "current_rmse": 100.0,
        "required_improvement": 0.02,
        "improvement": 0.1,
    }
    assert improvement_gate(measured(90.0), None, 0.02).passed


@pytest.mark.parametrize(
    ("coverage", "passed"),
    [(0.9, True), (0.85, True), (0.95, True), (0.849, False), (0.951, False), (None, False)],
)
def test_coverage_gate_allows_the_tolerance_both_ways(coverage: float | None, passed: bool) -> None:
    assert coverage_gate(measured(1.0, coverage), 0.9, 0.05).passed is passed


@pytest.mark.parametrize(
    ("worst", "passed"), [(0.9, True), (0.85, True), (0.849, False), (0.5, False)]
)
def test_coverage_gate_holds_the_worst_group_to_its_own_tolerance(
    worst: float, passed: bool
) -> None:
    gate = coverage_gate(measured(1.0, 0.9, worst=worst_group(worst)), 0.9, 0.05, 0.05)

    assert gate.passed is passed  # the marginal coverage is exactly the level every time
    assert gate.numbers["worst_group"] == worst_group(worst)
    assert gate.numbers["group_tolerance"] == 0.05
    assert "income (92900, 319200] (386 rows)" in gate.detail


def test_a_worst_group_within_tolerance_does_not_rescue_a_bad_marginal_coverage() -> None:
    assert not coverage_gate(measured(1.0, 0.8, worst=worst_group(0.9)), 0.9, 0.05, 0.05).passed


def test_without_a_checked_group_only_the_marginal_coverage_is_held() -> None:
    gate = coverage_gate(measured(1.0, 0.9, worst=None), 0.9, 0.05, 0.0)

    assert gate.passed
    assert "no decile or category has enough rows" in gate.detail


def test_the_policy_passes_its_group_tolerance_to_the_coverage_gate() -> None:
    evaluation = Evaluation(500, measured(90.0, 0.9, worst=worst_group(0.82)), measured(100.0))

    default = gates(evaluation, CUSTOMER_NEEDS.to_dict(), None, POLICY)
    loose = dataclasses.replace(POLICY, group_coverage_tolerance=0.1)

    assert POLICY.group_coverage_tolerance == 0.05
    assert gate_decision(default) == "not promoted: failed coverage"
    assert gate_decision(gates(evaluation, CUSTOMER_NEEDS.to_dict(), None, loose)) is None


def test_every_gate_is_evaluated_and_the_decision_names_the_failures() -> None:
    evaluation = Evaluation(500, measured(99.0, coverage=0.7), measured(100.0))

    checked = gates(evaluation, CUSTOMER_NEEDS.to_dict(), CUSTOMER_NEEDS.to_dict(), POLICY)

    assert [(g.name, g.passed) for g in checked] == [
        ("schema", True),
        ("finite", True),
        ("improvement", False),
        ("coverage", False),
    ]
    assert gate_decision(checked) == "not promoted: failed improvement, coverage"
    assert gate_decision(checked[:2]) is None


def test_refusals_map_to_their_decisions() -> None:
    assert refusal_decision(FileProblem(UNFINISHED, "x")) == (
        "refused: earlier attempts did not finish"
    )
    assert refusal_decision(FileProblem(TOO_FEW_ROWS, "x")) == BAD_DATA


# The report


def test_the_report_holds_decision_rows_metrics_gates_and_settings() -> None:
    upload = parse_event(*event("training/customer_needs/q4.csv"))
    assert isinstance(upload, TrainingUpload)
    outcome = Outcome(
        decision=PROMOTED,
        current={"version": "v1", "generation": "5"},
        challenger={"version": "v2", "estimator": "ridge"},
        live_after="v2",
        rows={"uploaded": {"read": 10, "used": 9, "rejected": 1}},
        evaluation=Evaluation(2, measured(1.0), measured(math.inf, non_finite=2)),
        gates=[Gate("finite", True, "ok", {"rows": 2})],
    )

    document = orjson.loads(
        encode_report(report(upload, outcome, run={"id": "r"}, policy=POLICY, timings={}))
    )

    assert document["decision"] == "promoted"
    assert document["promoted"] is True
    assert document["failed_gates"] == []
    assert document["input"] == {"bucket": "data", "name": upload.name, "generation": "17"}
    assert document["model"] == {
        "name": "customer_needs",
        "current": {"version": "v1", "generation": "5"},
        "challenger": {"version": "v2", "estimator": "ridge"},
        "live_after": "v2",
    }
    assert document["metrics"]["current"]["rmse"] is None
    assert document["metrics"]["current"]["non_finite_predictions"] == 2
    assert document["gates"] == [{"name": "finite", "passed": True, "detail": "ok", "rows": 2}]
    assert document["settings"]["min_improvement"] == 0.02
    assert document["settings"]["group_coverage_tolerance"] == 0.05
    assert document["settings"]["exclude_features"] == []


# Settings


def test_retraining_settings_defaults_and_values() -> None:
    defaults = from_env({})
    assert (defaults.retrain_join_current, defaults.retrain_min_improvement) == (False, 0.02)
    assert (defaults.retrain_coverage_tolerance, defaults.retrain_max_rows) == (0.05, 4_000_000)
    assert defaults.retrain_claim_seconds == 600.0
    assert defaults.retrain_group_coverage_tolerance == 0.05
    assert defaults.retrain_exclude_features == ()

    settings = from_env(
        {
            "RETRAIN_JOIN_CURRENT": " True ",
            "RETRAIN_MIN_IMPROVEMENT": "0",
            "RETRAIN_COVERAGE_TOLERANCE": "0.1",
            "RETRAIN_GROUP_COVERAGE_TOLERANCE": "0.08",
            "RETRAIN_EXCLUDE_FEATURES": " gender, ,age ",
            "RETRAIN_MAX_ROWS": "5000",
            "RETRAIN_CLAIM_SECONDS": "30",
        }
    )
    assert Policy.from_settings(settings) == Policy(
        0.0,
        0.1,
        True,
        5000,
        30.0,
        group_coverage_tolerance=0.08,
        exclude_features=("gender", "age"),
    )
    assert Policy.from_settings(settings).to_dict()["exclude_features"] == ["gender", "age"]


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("RETRAIN_JOIN_CURRENT", "maybe", "true or false"),
        ("RETRAIN_MIN_IMPROVEMENT", "1", "from 0 to below 1"),
        ("RETRAIN_MIN_IMPROVEMENT", "-0.1", "from 0 to below 1"),
        ("RETRAIN_COVERAGE_TOLERANCE", "nan", "from 0 to below 1"),
        ("RETRAIN_GROUP_COVERAGE_TOLERANCE", "1", "from 0 to below 1"),
        ("RETRAIN_GROUP_COVERAGE_TOLERANCE", "-0.01", "from 0 to below 1"),
        ("RETRAIN_MAX_ROWS", "1e6", "positive number"),
        ("RETRAIN_CLAIM_SECONDS", "0", "positive number"),
    ],
)
def test_bad_retraining_settings_are_refused(name: str, value: str, words: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name} must be .*{words}"):
        from_env({name: value})


# The challenger, measured on the rows `train` held out


@pytest.fixture(scope="module")
def customers() -> pd.DataFrame:
    return data.customers(2_000, seed=31)


def test_the_evaluation_rows_are_the_rows_train_held_out(customers: pd.DataFrame) -> None:
    recipe = fast("customer_needs")
    prepared = prepare(recipe, training_frame([customers], recipe.schema), 0)

    result = challenge(recipe, prepared, None, NOW)

    held_out = result.trained.metadata["metrics"]["held_out"]["chosen"]
    assert result.evaluation.rows == result.trained.metadata["training"]["rows_held_out"]
    assert result.evaluation.challenger.rmse == pytest.approx(held_out["rmse"], abs=1e-5)
    assert result.evaluation.challenger.coverage == pytest.approx(
        result.trained.metadata["metrics"]["interval_coverage"]["0.9"], abs=1e-4
    )
    assert result.evaluation.current is None


def test_the_current_model_is_measured_on_the_same_rows(
    customers: pd.DataFrame, tmp_path: Path
) -> None:
    recipe = fast("customer_needs")
    current = train(recipe, data.customers(2_000, seed=32), "v1", NOW)
    store = LocalFolder(tmp_path)
    publish(store, "customer_needs", "v1", current.artifact, current.metadata)
    loaded = load_current(store, "customer_needs")
    prepared = prepare(recipe, training_frame([customers], recipe.schema), 0)

    result = challenge(recipe, prepared, loaded, NOW)

    rows = prepared.features.iloc[prepared.evaluation][list(recipe.schema.feature_names)]
    actual = prepared.target.iloc[prepared.evaluation].to_numpy()
    served = [expected.in_domain(loaded.metadata, v) for v in loaded.pipeline.predict(rows)]
    rmse = np.sqrt(np.mean((actual - np.array(served)) ** 2))
    assert result.evaluation.current is not None
    assert result.evaluation.current.rmse == pytest.approx(rmse, abs=1e-5)
    assert result.evaluation.current.coverage is not None


def test_joined_rows_train_but_only_uploaded_rows_evaluate(customers: pd.DataFrame) -> None:
    recipe = fast("customer_needs")
    earlier = data.customers(3_000, seed=33)
    frame = training_frame([earlier, customers], recipe.schema)

    prepared = prepare(recipe, frame, len(earlier))

    rows = prepared.rows
    assert rows["uploaded"]["read"] == len(customers)
    assert rows["joined"]["read"] == len(earlier)
    assert rows["uploaded"]["used"] + rows["uploaded"]["rejected"] == len(customers)
    used = rows["uploaded"]["used"] + rows["joined"]["used"]
    outliers = rows["rejected_reasons"].get(OUTLIER, 0)
    assert outliers > 0  # the generator draws purchase outliers
    assert sum(rows["training"].values()) == used
    assert sum(rows["rejected_reasons"].values()) >= len(frame) - used
    assert rows["evaluation"] == len(prepared.evaluation)
    assert 0 < rows["evaluation"] < rows["training"]["held_out"]
    evaluated = prepared.features.iloc[prepared.evaluation]
    uploaded = training_frame([customers], recipe.schema)
    # every evaluation row is one of the upload's (age, income) pairs
    pairs = set(zip(uploaded["age"].astype(str), uploaded["income"].astype(str), strict=True))
    assert all(
        (str(a), str(i)) in pairs
        for a, i in zip(evaluated["age"], evaluated["income"], strict=True)
    )


def test_every_row_counted_as_used_is_in_one_part_of_the_split(customers: pd.DataFrame) -> None:
    recipe = fast("customer_needs")

    rows = prepare(recipe, training_frame([customers], recipe.schema), 0).rows

    assert rows["rejected_reasons"].get(OUTLIER, 0) > 0
    assert sum(rows["training"].values()) == rows["uploaded"]["used"]


def test_outliers_are_judged_by_the_fit_rows_rule_in_every_part(customers: pd.DataFrame) -> None:
    recipe = fast("customer_needs")
    frame = training_frame([customers], recipe.schema)
    frame["purchase_amount"] = frame["purchase_amount"].astype(float)
    # Every 50th valid row far beyond any rule: wherever the split puts it, it is left out.
    planted = frame.index[frame["purchase_amount"].notna()][::50]
    frame.loc[planted, "purchase_amount"] = 1e9

    prepared = prepare(recipe, frame, 0)

    assert prepared.rows["rejected_reasons"][OUTLIER] >= len(planted)
    evaluated = prepared.target.iloc[prepared.evaluation].to_numpy()
    assert len(evaluated)
    assert (evaluated < 1e9).all()
    result = challenge(recipe, prepared, None, NOW)
    rule = result.trained.metadata["training"]["outlier_rule"]
    assert rule["learned_on"] == "fit rows"
    assert rule["upper"] < 1e9


def test_an_excluded_feature_is_not_used_by_the_challenger(customers: pd.DataFrame) -> None:
    recipe = fast("customer_needs")
    prepared = prepare(recipe, training_frame([customers], recipe.schema), 0)

    result = challenge(recipe, prepared, None, NOW, exclude=("gender",))

    metadata = result.trained.metadata
    assert metadata["training"]["excluded_features"] == ["gender"]
    pipeline = joblib.load(io.BytesIO(result.trained.artifact))
    women = pd.DataFrame({"age": [30.0, 60.0], "gender": ["female"] * 2, "income": [4e4, 9e4]})
    men = women.assign(gender="male")
    np.testing.assert_array_equal(pipeline.predict(women), pipeline.predict(men))
    assert list(metadata["schema"]["features"][1]["categories"]) == ["female", "male", "other"]


def test_excluding_a_feature_the_model_does_not_have_is_untrainable(
    customers: pd.DataFrame,
) -> None:
    recipe = fast("customer_needs")
    prepared = prepare(recipe, training_frame([customers], recipe.schema), 0)

    with pytest.raises(FileProblem) as refused:
        challenge(recipe, prepared, None, NOW, exclude=("colour",))

    assert refused.value.code == UNTRAINABLE
    assert "colour" in refused.value.message


def test_too_few_rows_to_evaluate_are_refused_before_training() -> None:
    recipe = fast("customer_needs")
    small = data.customers(MIN_EVALUATION_ROWS * 4, seed=34)

    with pytest.raises(FileProblem) as refused:
        prepare(recipe, training_frame([small], recipe.schema), 0)

    assert refused.value.code == TOO_FEW_ROWS
    assert f"at least {MIN_EVALUATION_ROWS}" in refused.value.message


# What the current model was trained on


def test_the_bundled_data_is_used_only_if_it_reproduces_the_fingerprint() -> None:
    frame = data.customers(500, seed=35)
    metadata = {"training": {"fingerprint": fingerprint(frame)}}

    joined = verified_earlier([frame], False, metadata, CUSTOMER_NEEDS)
    tampered = frame.copy()
    tampered.loc[3, "purchase_amount"] = 1.0

    assert joined is not None
    assert joined.equals(training_frame([frame], CUSTOMER_NEEDS))
    assert verified_earlier([tampered], False, metadata, CUSTOMER_NEEDS) is None


def test_recorded_sources_are_joined_the_way_they_were_trained_on() -> None:
    first, second = data.customers(300, seed=36), data.customers(300, seed=37)
    trained_on = training_frame([first, second], CUSTOMER_NEEDS)
    record = retraining_record(
        [
            object_source(
                {"bucket": "b", "name": "training/customer_needs/a.csv", "generation": "1"}
            )
        ],
        {"bucket": "b", "name": "training/customer_needs/a.csv", "generation": "1"},
        "gs://b/retraining/report.json",
    )
    metadata = {"training": {"fingerprint": fingerprint(trained_on)}, "retraining": record}

    assert recorded_sources(metadata) == [
        {
            "source": "object",
            "bucket": "b",
            "name": "training/customer_needs/a.csv",
            "generation": "1",
        }
    ]
    assert recorded_sources({"training": {}}) is None
    assert verified_earlier([first, second], True, metadata, CUSTOMER_NEEDS) is not None
    assert verified_earlier([second, first], True, metadata, CUSTOMER_NEEDS) is None
