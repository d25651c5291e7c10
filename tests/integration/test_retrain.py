"""retrain_on_upload on a real functions-framework server, fed real CloudEvents, with the data
and the model store in the storage emulator: promotion picked up by a running HTTP function,
failing gates, bad data, limits, redelivery, races, claims, outages and rollback."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pandas as pd
import pytest
import requests

from models import data
from models.retraining.claims import claim_document
from shared.predict import Options, predict
from shared.store import load_current, set_current, upload_version
from shared.validation import Rows
from tests.integration.conftest import (
    BUNDLED,
    BUNDLED_VERSION,
    StartFunction,
    gcs_backend,
    launcher,
    new_bucket,
    publish_all,
)
from tests.integration.support import (
    REPO,
    FakeGcs,
    FunctionServer,
    PersistentFakeGcs,
    delete_object,
    list_objects,
    post_event,
    put_object,
    storage_event,
)

NAME = "training/customer_needs/crm/2026-q4.csv"
ROW = {"age": 40, "gender": "female", "income": 60000}
PROMOTED = "promoted"
MEANWHILE = "not promoted: another version was published meanwhile"


# Data


def changed(rows: int, seed: int) -> pd.DataFrame:
    """Customers who now spend three times what the bundled model learned."""
    frame = data.customers(rows, seed=seed)
    frame["purchase_amount"] = frame["purchase_amount"] * 3
    return frame


def as_csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


# Helpers


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def retrainer_env(store: str, **extra: str) -> dict[str, str]:
    return {"FUNCTION_SIGNATURE_TYPE": "cloudevent", "MODEL_STORE": store, **extra}


def deliver(
    server: FunctionServer, bucket: str, name: str, generation: int, event_id: str = "event-1"
) -> requests.Response:
    event = storage_event(bucket, name, generation, event_id=event_id, time=now())
    return post_event(server.url, event, "binary", timeout=240)


def upload_and_deliver(
    gcs: FakeGcs, server: FunctionServer, bucket: str, payload: bytes, name: str = NAME
) -> int:
    generation = put_object(gcs, bucket, name, payload)
    response = deliver(server, bucket, name, generation, f"event-{uuid.uuid4().hex}")
    assert response.status_code == 200, response.text
    return generation


def run_folder(name: str, generation: int) -> str:
    return f"retraining/{name.removeprefix('training/')}/{generation}/"


def report_of(gcs: FakeGcs, bucket: str, generation: int, name: str = NAME) -> dict[str, Any]:
    return dict(orjson.loads(gcs.get(bucket, run_folder(name, generation) + "report.json")))


def model_bucket(store: str) -> str:
    return store.removeprefix("gs://").split("/")[0]


def versions(gcs: FakeGcs, store: str, model: str = "customer_needs") -> set[str]:
    prefix = f"models/{model}/"
    names = list_objects(gcs, model_bucket(store), prefix)
    return {key.removeprefix(prefix).split("/")[0] for key in names if key.count("/") == 3}


def pointer_of(gcs: FakeGcs, store: str, model: str = "customer_needs") -> dict[str, Any]:
    return dict(orjson.loads(gcs.get(model_bucket(store), f"models/{model}/current.json")))


def log_entries(server: FunctionServer) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in server.log_lines() if line.startswith("{")]


def finished(server: FunctionServer) -> list[dict[str, Any]]:
    return [e for e in log_entries(server) if e["message"] == "retraining finished"]


def served(server: FunctionServer) -> requests.Response:
    response = requests.post(server.url, json=ROW, timeout=30)
    assert response.status_code == 200, response.text
    return response


def wait_for(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise AssertionError(f"condition not met within {timeout} s")


def put_claim(gcs: FakeGcs, bucket: str, generation: int, attempt: int, age: timedelta) -> None:
    claimed = datetime.now(UTC) - age
    document = claim_document(f"dead-{attempt}", attempt, "earlier", claimed)
    put_object(gcs, bucket, run_folder(NAME, generation) + f"claim-{attempt}.json", document)


def run_models_cli(gcs: FakeGcs, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "models", *args],
        cwd=REPO,
        env={**os.environ, "STORAGE_EMULATOR_HOST": gcs.url},
        capture_output=True,
        text=True,
        timeout=120,
    )


# Fixtures


@pytest.fixture
def store(gcs: FakeGcs) -> str:
    """The bundled models published to a bucket of their own, as deploy.sh leaves them."""
    return publish_all(gcs, new_bucket(gcs))


@pytest.fixture(scope="module")
def steady_store(gcs: FakeGcs) -> str:
    """A model store the module's refusing tests share; nothing is ever promoted into it."""
    return publish_all(gcs, new_bucket(gcs))


@pytest.fixture(scope="module")
def refuser(
    gcs: FakeGcs, tmp_path_factory: pytest.TempPathFactory, steady_store: str
) -> Iterator[FunctionServer]:
    """One retraining server with a small row limit, for the tests that promote nothing."""
    with launcher(gcs, tmp_path_factory.mktemp("refuser")) as start:
        yield start("retrain_on_upload", **retrainer_env(steady_store, RETRAIN_MAX_ROWS="2500"))


# Promotion, and the functions that serve it


def test_a_changed_relationship_is_promoted_and_served_without_a_restart(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    http = start_function("predict_customer_needs", MODEL_STORE=store, MODEL_REFRESH_SECONDS="0.5")
    retrainer = start_function("retrain_on_upload", **retrainer_env(store))
    before = served(http).json()
    assert before["model"]["version"] == BUNDLED_VERSION
    uploaded = changed(3000, seed=41)
    uploaded.insert(0, "customer_id", [f"CUST-SECRET-{i}" for i in range(len(uploaded))])

    generation = upload_and_deliver(gcs, retrainer, bucket, as_csv(uploaded))

    report = report_of(gcs, bucket, generation)
    challenger = report["model"]["challenger"]["version"]
    assert report["decision"] == PROMOTED
    assert report["failed_gates"] == []
    assert [(g["name"], g["passed"]) for g in report["gates"]] == [
        ("schema", True), ("finite", True), ("improvement", True), ("coverage", True),
    ]  # fmt: skip
    improvement = next(g for g in report["gates"] if g["name"] == "improvement")
    assert improvement["challenger_rmse"] <= improvement["current_rmse"] * 0.98
    assert report["metrics"]["challenger"]["rmse"] == improvement["challenger_rmse"]
    coverage = next(g for g in report["gates"] if g["name"] == "coverage")
    assert coverage["group_tolerance"] == report["settings"]["group_coverage_tolerance"] == 0.05
    worst = coverage["worst_group"]  # the decile or category, of those checked, covered least
    assert worst["feature"] in ("age", "gender", "income")
    assert worst["coverage"] >= coverage["level"] - coverage["group_tolerance"]
    assert report["settings"]["exclude_features"] == []
    assert report["model"]["current"]["version"] == BUNDLED_VERSION
    assert report["model"]["live_after"] == challenger
    rows = report["rows"]
    assert rows["uploaded"]["read"] == 3000
    assert rows["uploaded"]["used"] + rows["uploaded"]["rejected"] == 3000
    assert 0 < rows["uploaded"]["rejected"] < 300  # the generator's dirt
    assert report["metrics"]["evaluation_rows"] == rows["evaluation"] >= 200
    assert pointer_of(gcs, store)["version"] == challenger
    assert versions(gcs, store) == {BUNDLED_VERSION, challenger}
    # The running HTTP function switches by itself, and answers with the challenger's numbers.
    after = wait_for(lambda: (r := served(http).json())["model"]["version"] == challenger and r)
    live = load_current(gcs_backend(gcs, model_bucket(store)), "customer_needs")
    row = {**ROW, "age": 40.0, "income": 60000.0}
    expected = predict(live, Rows.of_records([row]), Options())
    assert after["predictions"][0] == pytest.approx(expected.values[0], rel=1e-6)
    assert 2 < after["predictions"][0] / before["predictions"][0] < 4
    assert live.metadata["retraining"]["training_data"] == [
        {"source": "object", "bucket": bucket, "name": NAME, "generation": str(generation)}
    ]
    # One log line tells the outcome, with no customer data in it.
    (line,) = finished(retrainer)
    assert (line["decision"], line["challenger_version"]) == (PROMOTED, challenger)
    assert "CUST-SECRET" not in "\n".join(retrainer.log_lines())


def test_rollback_serves_the_old_version_again(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    http = start_function("predict_customer_needs", MODEL_STORE=store, MODEL_REFRESH_SECONDS="0.5")
    retrainer = start_function("retrain_on_upload", **retrainer_env(store))
    generation = upload_and_deliver(gcs, retrainer, bucket, as_csv(changed(3000, seed=42)))
    challenger = report_of(gcs, bucket, generation)["model"]["challenger"]["version"]
    wait_for(lambda: served(http).headers["X-Model-Version"] == challenger)

    rolled = run_models_cli(
        gcs, "rollback", "customer_needs", "--to", BUNDLED_VERSION, "--store", store
    )

    assert rolled.returncode == 0, rolled.stderr
    assert f"{challenger} -> {BUNDLED_VERSION}" in rolled.stdout
    wait_for(lambda: served(http).headers["X-Model-Version"] == BUNDLED_VERSION)
    assert load_current(gcs_backend(gcs, model_bucket(store)), "customer_needs").version == (
        BUNDLED_VERSION
    )


# Gates that fail


def test_data_the_current_model_already_knows_is_not_promoted_and_the_report_says_why(
    gcs: FakeGcs, bucket: str, steady_store: str, refuser: FunctionServer
) -> None:
    before = list_objects(gcs, model_bucket(steady_store))

    generation = upload_and_deliver(gcs, refuser, bucket, as_csv(data.customers(1500, seed=43)))

    report = report_of(gcs, bucket, generation)
    assert report["decision"] == "not promoted: failed improvement"
    assert report["failed_gates"] == ["improvement"]
    improvement = next(g for g in report["gates"] if g["name"] == "improvement")
    assert improvement["passed"] is False
    assert improvement["challenger_rmse"] > improvement["current_rmse"] * 0.98
    assert improvement["required_improvement"] == 0.02
    assert report["model"]["live_after"] == BUNDLED_VERSION
    assert list_objects(gcs, model_bucket(steady_store)) == before  # nothing uploaded or moved


def test_a_european_excel_file_trains_exactly_as_its_comma_separated_twin(
    gcs: FakeGcs, bucket: str, refuser: FunctionServer
) -> None:
    frame = data.customers(1500, seed=43)
    excel = frame.rename(columns=str.title).to_csv(
        sep=";", decimal=",", index=False, lineterminator="\r\n"
    )
    excel_name = "training/customer_needs/crm/2026-q4-excel.csv"

    plain = upload_and_deliver(gcs, refuser, bucket, as_csv(frame))
    european = upload_and_deliver(
        gcs, refuser, bucket, b"\xef\xbb\xbf" + excel.encode(), excel_name
    )

    reports = [report_of(gcs, bucket, plain), report_of(gcs, bucket, european, excel_name)]
    assert "," in excel.split("\r\n")[1]  # decimal commas, as Excel writes them
    assert [r["decision"] for r in reports] == ["not promoted: failed improvement"] * 2
    assert reports[0]["gates"] == reports[1]["gates"]


def test_a_current_model_with_another_feature_schema_fails_the_schema_gate(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    backend = gcs_backend(gcs, model_bucket(store))
    metadata = orjson.loads(BUNDLED.read(f"customer_needs/{BUNDLED_VERSION}/metadata.json"))
    metadata["schema"]["features"][0]["maximum"] = 120  # an older model that took older ages
    artifact = BUNDLED.read(f"customer_needs/{BUNDLED_VERSION}/model.joblib")
    upload_version(backend, "customer_needs", "20251128T000000Z-ages-120", artifact, metadata)
    set_current(backend, "customer_needs", "20251128T000000Z-ages-120")
    retrainer = start_function("retrain_on_upload", **retrainer_env(store))

    generation = upload_and_deliver(gcs, retrainer, bucket, as_csv(changed(3000, seed=44)))

    report = report_of(gcs, bucket, generation)
    assert report["failed_gates"] == ["schema"]
    schema = report["gates"][0]
    assert (schema["name"], schema["passed"], schema["differing"]) == ("schema", False, ["age"])
    assert pointer_of(gcs, store)["version"] == "20251128T000000Z-ages-120"


def test_joined_with_the_current_data_intervals_that_miss_the_new_rows_fail_coverage(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    retrainer = start_function(
        "retrain_on_upload", **retrainer_env(store, RETRAIN_JOIN_CURRENT="true")
    )

    generation = upload_and_deliver(gcs, retrainer, bucket, as_csv(changed(3000, seed=41)))

    report = report_of(gcs, bucket, generation)
    assert report["join"] == {
        "requested": True,
        "used": True,
        "version": BUNDLED_VERSION,
        "sources": [{"source": "bundled"}],
        "rows": 20_000,
    }
    assert report["rows"]["joined"]["read"] == 20_000
    assert report["rows"]["uploaded"]["read"] == 3000
    # Better on average than the current model, but its intervals are the old customers'.
    assert report["failed_gates"] == ["coverage"]
    coverage = report["gates"][3]
    assert coverage["coverage"] < coverage["level"] - coverage["tolerance"]
    assert report["decision"] == "not promoted: failed coverage"
    assert pointer_of(gcs, store)["version"] == BUNDLED_VERSION


def test_a_group_covered_too_little_fails_the_coverage_gate_with_it_named(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    # On this upload the challenger's intervals cover one gender several points under the
    # level while overall coverage stays within a wide tolerance: the group alone fails it.
    env = retrainer_env(
        store, RETRAIN_COVERAGE_TOLERANCE="0.1", RETRAIN_GROUP_COVERAGE_TOLERANCE="0.02"
    )
    retrainer = start_function("retrain_on_upload", **env)

    generation = upload_and_deliver(gcs, retrainer, bucket, as_csv(changed(3000, seed=45)))

    report = report_of(gcs, bucket, generation)
    coverage = next(g for g in report["gates"] if g["name"] == "coverage")
    worst = coverage["worst_group"]
    assert abs(coverage["coverage"] - coverage["level"]) <= coverage["tolerance"]
    assert worst["coverage"] < coverage["level"] - coverage["group_tolerance"]
    assert worst["rows"] >= 200  # enough rows to be checked
    assert coverage["passed"] is False
    assert f"the worst group, {worst['feature']} {worst['group']}" in coverage["detail"]
    assert report["settings"]["group_coverage_tolerance"] == coverage["group_tolerance"] == 0.02
    assert report["failed_gates"] == ["coverage"]
    assert pointer_of(gcs, store)["version"] == BUNDLED_VERSION


def test_a_retrained_version_lists_its_data_and_the_next_run_joins_exactly_that(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    # What is joined is under test here, not the gates: a group's coverage on this small upload
    # (about 300 rows per gender) may fall short of the default tolerance.
    first = start_function(
        "retrain_on_upload", **retrainer_env(store, RETRAIN_GROUP_COVERAGE_TOLERANCE="0.2")
    )
    first_generation = upload_and_deliver(gcs, first, bucket, as_csv(changed(3000, seed=45)))
    first_report = report_of(gcs, bucket, first_generation)
    assert first_report["decision"] == PROMOTED
    promoted = first_report["model"]["challenger"]["version"]
    joining = start_function(
        "retrain_on_upload", **retrainer_env(store, RETRAIN_JOIN_CURRENT="true")
    )
    second_name = NAME.replace("2026-q4", "2027-q1")

    second_generation = upload_and_deliver(
        gcs, joining, bucket, as_csv(changed(2000, seed=46)), second_name
    )

    report = report_of(gcs, bucket, second_generation, second_name)
    first_source = {"source": "object", "bucket": bucket, "name": NAME}
    first_source["generation"] = str(first_generation)
    assert report["join"] == {
        "requested": True,
        "used": True,
        "version": promoted,
        "sources": [first_source],
        "rows": 3000,
    }
    assert report["rows"]["joined"]["read"] == 3000
    assert report["rows"]["uploaded"]["read"] == 2000
    training = report["rows"]["training"]
    assert (
        sum(training.values())
        == report["rows"]["uploaded"]["used"] + (report["rows"]["joined"]["used"])
    )
    assert report["rows"]["evaluation"] < training["held_out"]  # the upload's rows only


# Bad data and limits


@pytest.mark.parametrize(
    ("name", "payload", "code"),
    [
        (NAME, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x04\x00", "not_utf8"),
        (NAME + ".gz", b"\x1f\x8b\x08\x00broken", "bad_gzip"),
        (NAME, b"", "empty"),
        (NAME, b"age,gender,income\n35,F,52000\n", "missing_columns"),
        (NAME, b"age|gender|income|purchase_amount\n35|F|52000|900\n", "wrong_delimiter"),
        ("training/customer_needs/tiny.csv", None, "too_few_rows"),
        ("training/churn/customers.csv", None, "unknown_model"),
    ],
)
def test_unusable_files_are_reported_and_acknowledged(
    gcs: FakeGcs,
    bucket: str,
    steady_store: str,
    refuser: FunctionServer,
    name: str,
    payload: bytes | None,
    code: str,
) -> None:
    payload = as_csv(data.customers(300, seed=47)) if payload is None else payload
    before = list_objects(gcs, model_bucket(steady_store))

    generation = upload_and_deliver(gcs, refuser, bucket, payload, name)

    report = report_of(gcs, bucket, generation, name)
    assert report["decision"] == "refused: bad data"
    assert report["problem"]["code"] == code
    assert report["problem"]["message"]
    assert report["gates"] == []
    assert report["model"]["challenger"] is None
    assert list_objects(gcs, model_bucket(steady_store)) == before


def test_too_many_rows_are_refused_up_front_without_training(
    gcs: FakeGcs, bucket: str, steady_store: str, refuser: FunctionServer
) -> None:
    payload = gzip.compress(as_csv(data.customers(3000, seed=48)))
    name = NAME + ".gz"

    generation = upload_and_deliver(gcs, refuser, bucket, payload, name)

    report = report_of(gcs, bucket, generation, name)
    assert report["decision"] == "refused: too many rows"
    assert report["problem"]["code"] == "too_many_rows"
    assert "more than 2500 data lines" in report["problem"]["message"]
    assert "training_seconds" not in report["timings"]
    assert report["rows"] == {}
    assert report["settings"]["max_rows"] == 2500


@pytest.mark.parametrize(
    "name",
    [
        "incoming/customer_needs/customers.csv",
        "retraining/customer_needs/crm/2026-q4.csv/1/report.json",
        "training/customers.csv",
        "training/customer_needs/notes.txt",
    ],
)
def test_objects_outside_the_training_layout_are_ignored(
    gcs: FakeGcs, bucket: str, refuser: FunctionServer, name: str
) -> None:
    generation = put_object(gcs, bucket, name, as_csv(changed(300, seed=49)))
    event_id = f"ignored-{uuid.uuid4().hex}"

    response = deliver(refuser, bucket, name, generation, event_id)

    assert response.status_code == 200
    assert list_objects(gcs, bucket) == {name: generation}
    logged = [e["message"] for e in log_entries(refuser) if e.get("event_id") == event_id]
    assert logged == ["event ignored"]


# At least once, at the same time


def test_a_redelivered_event_does_not_train_again(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    retrainer = start_function("retrain_on_upload", **retrainer_env(store))
    generation = put_object(gcs, bucket, NAME, as_csv(changed(3000, seed=50)))
    first = deliver(retrainer, bucket, NAME, generation, "event-a")
    outputs = list_objects(gcs, bucket, "retraining/")
    report = gcs.get(bucket, run_folder(NAME, generation) + "report.json")
    published = versions(gcs, store)

    again = [deliver(retrainer, bucket, NAME, generation, event) for event in ("event-a", "b")]

    assert [first.status_code] + [r.status_code for r in again] == [200, 200, 200]
    assert list_objects(gcs, bucket, "retraining/") == outputs  # same objects, same generations
    assert gcs.get(bucket, run_folder(NAME, generation) + "report.json") == report
    assert versions(gcs, store) == published
    assert len(published) == 2
    assert len(finished(retrainer)) == 1
    assert [e["message"] for e in log_entries(retrainer)].count(
        "upload already retrained on; nothing to do"
    ) == 2


def test_an_attempt_that_died_after_promoting_is_not_trained_again(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    retrainer = start_function("retrain_on_upload", **retrainer_env(store))
    generation = upload_and_deliver(gcs, retrainer, bucket, as_csv(changed(3000, seed=59)))
    first = report_of(gcs, bucket, generation)
    published = versions(gcs, store)
    # As if that attempt had died between moving current.json and writing its report:
    delete_object(gcs, bucket, run_folder(NAME, generation) + "report.json")
    put_claim(gcs, bucket, generation, 1, timedelta(hours=1))

    response = deliver(retrainer, bucket, NAME, generation, "after-the-crash")

    assert response.status_code == 200
    report = report_of(gcs, bucket, generation)
    assert report["decision"] == "promoted (by an earlier attempt at this file)"
    assert report["promoted"] is True
    assert report["run"]["attempt"] == 2
    assert report["model"]["live_after"] == first["model"]["challenger"]["version"]
    assert versions(gcs, store) == published
    assert "training_seconds" not in report["timings"]


def test_deliveries_at_the_same_moment_train_once(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    retrainer = start_function("retrain_on_upload", **retrainer_env(store))
    generation = put_object(gcs, bucket, NAME, as_csv(changed(3000, seed=51)))
    start = threading.Barrier(3)
    statuses: list[int] = []

    def call() -> None:
        start.wait()
        statuses.append(deliver(retrainer, bucket, NAME, generation, "same-event").status_code)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    redelivered = deliver(retrainer, bucket, NAME, generation, "same-event")

    assert 200 in statuses
    assert set(statuses) <= {200, 500}  # 500: retry later, another delivery is training
    assert redelivered.status_code == 200
    assert len(finished(retrainer)) == 1
    report = report_of(gcs, bucket, generation)
    assert report["decision"] == PROMOTED
    assert versions(gcs, store) == {BUNDLED_VERSION, report["model"]["challenger"]["version"]}
    claims = [n for n in list_objects(gcs, bucket, "retraining/") if "/claim-" in n]
    assert claims == [run_folder(NAME, generation) + "claim-1.json"]


def test_two_uploads_at_once_promote_one_winner_over_a_consistent_pointer(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    retrainer = start_function("retrain_on_upload", **retrainer_env(store))
    names = [NAME, NAME.replace("2026-q4", "2026-q4-west")]
    generations = [
        put_object(gcs, bucket, name, as_csv(changed(3000, seed=52 + i)))
        for i, name in enumerate(names)
    ]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def call(name: str, generation: int) -> None:
        start.wait()
        statuses.append(deliver(retrainer, bucket, name, generation, name).status_code)

    threads = [
        threading.Thread(target=call, args=pair) for pair in zip(names, generations, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200, 200]
    reports = [report_of(gcs, bucket, g, n) for n, g in zip(names, generations, strict=True)]
    # Both decided against the same current.json generation: only one could move it.
    assert len({r["model"]["current"]["generation"] for r in reports}) == 1
    assert sorted(r["decision"] for r in reports) == [MEANWHILE, PROMOTED]
    winner = next(r for r in reports if r["decision"] == PROMOTED)
    loser = next(r for r in reports if r["decision"] == MEANWHILE)
    winning_version = winner["model"]["challenger"]["version"]
    assert loser["failed_gates"] == []
    assert loser["model"]["live_after"] == winning_version
    assert pointer_of(gcs, store)["version"] == winning_version
    live = load_current(gcs_backend(gcs, model_bucket(store)), "customer_needs")  # verified
    assert live.version == winning_version


# Claims and outages


def test_a_claim_left_by_an_attempt_that_died_is_taken_over(
    gcs: FakeGcs, bucket: str, refuser: FunctionServer
) -> None:
    generation = put_object(gcs, bucket, NAME, as_csv(data.customers(1500, seed=55)))
    put_claim(gcs, bucket, generation, 1, timedelta(hours=1))

    response = deliver(refuser, bucket, NAME, generation)

    assert response.status_code == 200
    report = report_of(gcs, bucket, generation)
    assert report["run"]["attempt"] == 2
    assert report["run"]["id"] != "dead-1"
    assert report["decision"].startswith("not promoted")


def test_a_live_claim_makes_another_delivery_retry_later(
    gcs: FakeGcs, bucket: str, refuser: FunctionServer
) -> None:
    generation = put_object(gcs, bucket, NAME, as_csv(data.customers(1500, seed=56)))
    put_claim(gcs, bucket, generation, 1, timedelta(seconds=5))
    event_id = f"held-{uuid.uuid4().hex}"

    response = deliver(refuser, bucket, NAME, generation, event_id)

    assert response.status_code == 500
    assert set(list_objects(gcs, bucket, "retraining/")) == {
        run_folder(NAME, generation) + "claim-1.json"
    }
    logged = [e for e in log_entries(refuser) if e.get("event_id") == event_id]
    assert [e["message"] for e in logged] == ["retraining not finished; the event will be retried"]


def test_after_repeated_dead_attempts_the_run_is_refused_with_a_report(
    gcs: FakeGcs, bucket: str, refuser: FunctionServer
) -> None:
    generation = put_object(gcs, bucket, NAME, as_csv(data.customers(1500, seed=57)))
    for attempt in (1, 2, 3):
        put_claim(gcs, bucket, generation, attempt, timedelta(hours=4 - attempt))

    response = deliver(refuser, bucket, NAME, generation)

    assert response.status_code == 200
    report = report_of(gcs, bucket, generation)
    assert report["decision"] == "refused: earlier attempts did not finish"
    assert report["run"]["attempt"] == 4


def test_storage_down_fails_the_event_and_a_redelivery_trains(
    restartable_gcs: PersistentFakeGcs, start_function: StartFunction
) -> None:
    storage = restartable_gcs
    bucket = new_bucket(storage)
    store = publish_all(storage, new_bucket(storage))
    retrainer = start_function(
        "retrain_on_upload", **retrainer_env(store, STORAGE_EMULATOR_HOST=storage.url)
    )
    generation = put_object(storage, bucket, NAME, as_csv(changed(3000, seed=58)))

    storage.stop()
    down = deliver(retrainer, bucket, NAME, generation, "outage")
    storage.start()
    up = wait_for(lambda: (r := deliver(retrainer, bucket, NAME, generation, "outage")).ok and r)

    assert down.status_code == 500
    assert up.status_code == 200
    assert report_of(storage, bucket, generation)["decision"] == PROMOTED
    messages = [e["message"] for e in log_entries(retrainer) if e.get("event_id") == "outage"]
    assert "retraining not finished; the event will be retried" in messages


def test_a_feature_left_out_by_setting_is_reported_with_what_it_costs(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    retrainer = start_function(
        "retrain_on_upload", **retrainer_env(store, RETRAIN_EXCLUDE_FEATURES="gender")
    )

    generation = upload_and_deliver(gcs, retrainer, bucket, as_csv(changed(3000, seed=41)))

    report = report_of(gcs, bucket, generation)
    assert report["settings"]["exclude_features"] == ["gender"]
    fairness = report["model"]["challenger"]["fairness"]
    assert fairness["excluded_features"] == ["gender"]
    cost = fairness["exclusion_cost"]
    assert cost["rmse_change"] == pytest.approx(cost["rmse_without"] - cost["rmse_with"], abs=1e-6)
    assert set(fairness["features"]) == {"gender"}  # still measured per gender
    assert report["decision"] == PROMOTED
    live = load_current(gcs_backend(gcs, model_bucket(store)), "customer_needs")
    assert live.metadata["training"]["excluded_features"] == ["gender"]
    genders = pd.DataFrame([{**ROW, "gender": gender} for gender in ("female", "male", "other")])
    assert len(set(live.pipeline.predict(genders[list(ROW)]).tolist())) == 1  # gender unused


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("no period columns", "missing_columns", "year, quarter"),
        ("periods out of order", "untrainable", "sort the file by year, quarter"),
        ("a period twice", "untrainable", "the file must list each period once"),
    ],
)
def test_market_data_must_list_its_quarters_in_time_order(
    gcs: FakeGcs,
    bucket: str,
    steady_store: str,
    refuser: FunctionServer,
    case: str,
    code: str,
    words: str,
) -> None:
    frame = data.markets(1200)  # enough rows to be trained on, were they in order
    if case == "no period columns":
        frame = frame.drop(columns=["year", "quarter"])
    elif case == "periods out of order":
        frame = pd.concat([frame.iloc[600:], frame.iloc[:600]], ignore_index=True)
    else:
        frame.loc[601, ["year", "quarter"]] = frame.loc[600, ["year", "quarter"]].to_numpy()
    name = "training/market_trend/regions/unordered.csv"
    before = list_objects(gcs, model_bucket(steady_store))

    generation = upload_and_deliver(gcs, refuser, bucket, as_csv(frame), name)

    report = report_of(gcs, bucket, generation, name)
    assert report["decision"] == "refused: bad data", report["problem"]
    assert report["problem"]["code"] == code
    assert words in report["problem"]["message"]
    assert report["model"]["challenger"] is None
    assert list_objects(gcs, model_bucket(steady_store)) == before


def test_market_trend_retrains_with_its_own_schema_and_time_order(
    gcs: FakeGcs, bucket: str, store: str, start_function: StartFunction
) -> None:
    retrainer = start_function("retrain_on_upload", **retrainer_env(store))
    name = "training/market_trend/regions/2026.csv"

    generation = upload_and_deliver(gcs, retrainer, bucket, as_csv(data.markets(2000)), name)

    report = report_of(gcs, bucket, generation, name)
    assert report["decision"] == PROMOTED
    assert report["rows"]["uploaded"] == {"read": 2000, "used": 2000, "rejected": 0}
    assert report["rows"]["evaluation"] == report["rows"]["training"]["held_out"] == 400
    version = report["model"]["challenger"]["version"]
    assert pointer_of(gcs, store, "market_trend")["version"] == version
    assert pointer_of(gcs, store)["version"] == BUNDLED_VERSION  # the other model untouched
