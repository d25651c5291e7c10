"""kserve's InferenceRESTClient against both functions, in V1 and V2 (Open Inference Protocol).

The client lives in its own virtual environment (kserve_env.py) and is driven there as a
subprocess (kserve_driver.py); its answers come back as JSON.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shared.predict._explain import shapley
from shared.store import LoadedModel, load_current
from tests import expected as reference
from tests.integration import kserve_env
from tests.integration.conftest import (
    BUNDLED,
    MODELS,
    TARGETS,
    StartFunction,
    bundled_version,
    new_bucket,
    publish_all,
)
from tests.integration.support import SETUP_TIMEOUT_SECONDS, FakeGcs, FunctionServer

# The first run makes the client's environment (about a minute); the default bound is too tight.
pytestmark = pytest.mark.timeout(SETUP_TIMEOUT_SECONDS + 300)

DRIVER = Path(__file__).with_name("kserve_driver.py")
OUTSIDE = "outside_training_range"
ROWS = {
    "customer_needs": [
        {"age": 35.0, "gender": "female", "income": 52000.0},
        {"age": 61.0, "gender": "male", "income": 90000.5},
        {"age": 18.0, "gender": "other", "income": 0.0},  # an income below any fit on
    ],
    "market_trend": [
        {"sales": 9000.0, "population": 300.5, "gdp": 13000.0},
        {"sales": 4000.5, "population": 200.0, "gdp": 6000.0},
    ],
}
BAD_ROWS = {
    "customer_needs": (
        [
            {"age": 35, "gender": "female", "income": 1},
            {"age": 300, "gender": "robot", "income": 1},
        ],
        ["row 1, age: must be between 18 and 100", "row 1, gender: must be one of"],
    ),
    "market_trend": (
        [{"sales": 9000, "population": 300, "gdp": 1}, {"sales": 1, "population": 2, "gdp": -5}],
        ["row 1, gdp: must be between"],
    ),
}


@pytest.fixture(scope="session")
def kserve_python() -> Path:
    """The client's interpreter; made on first use and kept between runs."""
    return kserve_env.ensure()


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def server(running: dict[str, FunctionServer], model: str) -> FunctionServer:
    return running[model]


def drive(python: Path, url: str, *calls: dict[str, Any]) -> list[dict[str, Any]]:
    """Run `calls` through kserve's client; one {"result"} or {"error"} per call."""
    command = json.dumps({"url": url, "calls": list(calls)})
    done = subprocess.run(
        [str(python), str(DRIVER)],
        input=command,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    assert len(results) == len(calls)
    return results


def results(answers: list[dict[str, Any]]) -> list[Any]:
    """The values, failing with the client's error if any call raised."""
    errors = [answer["error"] for answer in answers if "error" in answer]
    assert not errors, errors
    return [answer["result"] for answer in answers]


def tensors(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Columnar inputs of mixed types: BYTES for categories, FP64 for numbers."""
    return [
        {
            "name": name,
            "datatype": "BYTES" if isinstance(rows[0][name], str) else "FP64",
            "data": [row[name] for row in rows],
        }
        for name in rows[0]
    ]


@functools.cache
def bundled(name: str) -> LoadedModel:
    return load_current(BUNDLED, name)


def expected(name: str, rows: list[dict[str, Any]]) -> list[float]:
    """The bundled model's own in-process predictions, raised to the target's minimum."""
    model = bundled(name)
    frame = pd.DataFrame(rows)[list(model.schema.feature_names)]
    return [reference.in_domain(model.metadata, float(v)) for v in model.pipeline.predict(frame)]


def expected_bounds(name: str, rows: list[dict[str, Any]], level: float) -> list[Any]:
    """Each row's interval by the normalised split-conformal definition; None where withheld."""
    return reference.intervals(bundled(name).metadata, rows, expected(name, rows), level)


def flag_texts(name: str, rows: list[dict[str, Any]]) -> list[str]:
    """Per row, the features outside the training range as V2 sends them."""
    return [";".join(reference.outside(bundled(name).metadata, row)) for row in rows]


def test_v1_predict_matches_in_process_predictions(kserve_python, server, model):
    rows, features = ROWS[model], bundled(model).schema.feature_names
    as_lists = [[row[name] for name in features] for row in rows]

    objects, lists = results(
        drive(
            kserve_python,
            server.url,
            {"op": "predict", "protocol": "v1", "model": model, "instances": rows},
            {"op": "predict", "protocol": "v1", "model": model, "instances": as_lists},
        )
    )

    assert objects["predictions"] == pytest.approx(expected(model, rows), rel=1e-12)
    assert objects["model"] == {"name": model, "version": bundled_version(model)}
    assert lists["predictions"] == objects["predictions"]


def test_v1_predict_with_interval_and_explanations(kserve_python, server, model):
    loaded, rows = bundled(model), ROWS[model]
    target = loaded.schema.target
    bounds = expected_bounds(model, rows, 0.8)

    (body,) = results(
        drive(
            kserve_python,
            server.url,
            {
                "op": "predict",
                "protocol": "v1",
                "model": model,
                "instances": rows,
                "parameters": {"interval": 0.8, "explain": True},
            },
        )
    )

    predictions = body["predictions"]
    assert [p[target] for p in predictions] == pytest.approx(expected(model, rows), rel=1e-12)
    for prediction, interval, row in zip(predictions, bounds, rows, strict=True):
        assert prediction[OUTSIDE] == reference.outside(loaded.metadata, row)
        if interval is None:
            assert prediction["interval"]["lower"] is prediction["interval"]["upper"] is None
        else:
            assert prediction["interval"] == {
                "level": 0.8,
                "lower": pytest.approx(interval[0], rel=1e-12),
                "upper": pytest.approx(interval[1], rel=1e-12),
            }
        total = prediction["base_value"] + sum(prediction["contributions"].values())
        assert total == pytest.approx(prediction[target], rel=1e-9)


def test_v2_infer_matches_in_process_predictions(kserve_python, server, model):
    loaded, rows = bundled(model), ROWS[model]
    target, features = loaded.schema.target, list(loaded.schema.feature_names)
    names = [target, f"{target}_lower", f"{target}_upper", OUTSIDE, "base_value"]
    names += [f"contribution_{feature}" for feature in features]
    bounds = expected_bounds(model, rows, 0.9)
    lower = [np.nan if b is None else b[0] for b in bounds]  # the client reads null as NaN
    upper = [np.nan if b is None else b[1] for b in bounds]
    frame = pd.DataFrame(rows)[features]
    background = pd.DataFrame(loaded.metadata["explanations"]["background"])[features]
    base, contributions = shapley(loaded.pipeline.predict, frame, background, features)

    plain, extras = results(
        drive(
            kserve_python,
            server.url,
            {"op": "infer", "protocol": "v2", "model": model, "inputs": tensors(rows), "id": "r1"},
            {
                "op": "infer",
                "protocol": "v2",
                "model": model,
                "inputs": tensors(rows),
                "outputs": names,
                "parameters": {"interval": 0.9, "explain": True},
            },
        )
    )

    predicted = np.array(expected(model, rows))
    assert plain["model_name"] == model
    assert plain["version_header"] == bundled_version(model)
    assert plain["id"] == "r1"
    assert [(o["name"], o["datatype"], o["shape"]) for o in plain["outputs"]] == [
        (target, "FP64", [len(rows)]),
        (OUTSIDE, "BYTES", [len(rows)]),
    ]
    assert plain["outputs"][0]["data"] == pytest.approx(predicted, rel=1e-12)
    assert plain["outputs"][1]["data"] == flag_texts(model, rows)
    got = {output["name"]: output["data"] for output in extras["outputs"]}
    assert list(got) == names
    assert got[target] == pytest.approx(predicted, rel=1e-12)
    assert got[f"{target}_lower"] == pytest.approx(lower, rel=1e-12, nan_ok=True)
    assert got[f"{target}_upper"] == pytest.approx(upper, rel=1e-12, nan_ok=True)
    assert got[OUTSIDE] == flag_texts(model, rows)
    assert got["base_value"] == pytest.approx([base] * len(rows), rel=1e-12)
    for position, feature in enumerate(features):
        assert got[f"contribution_{feature}"] == pytest.approx(
            contributions[:, position], rel=1e-9, abs=1e-9
        )


def test_v1_rows_under_inputs_and_v2_outputs_asked_for_by_name_alone(kserve_python, server, model):
    loaded, rows = bundled(model), ROWS[model]
    target, feature = loaded.schema.target, loaded.schema.feature_names[0]
    lists = [[row[f] for f in loaded.schema.feature_names] for row in rows]
    bounds = expected_bounds(model, rows, 0.9)  # no level sent: the default

    by_inputs, lower, explained = results(
        drive(
            kserve_python,
            server.url,
            {
                "op": "predict",
                "protocol": "v1",
                "model": model,
                "instances": lists,
                "key": "inputs",
            },
            {
                "op": "infer",
                "protocol": "v2",
                "model": model,
                "inputs": tensors(rows),
                "outputs": [f"{target}_lower"],
            },
            {
                "op": "infer",
                "protocol": "v2",
                "model": model,
                "inputs": tensors(rows),
                "outputs": ["base_value", f"contribution_{feature}"],
            },
        )
    )

    assert by_inputs["predictions"] == pytest.approx(expected(model, rows), rel=1e-12)
    assert [(o["name"], o["datatype"]) for o in lower["outputs"]] == [(f"{target}_lower", "FP64")]
    assert lower["outputs"][0]["data"] == pytest.approx(
        [np.nan if b is None else b[0] for b in bounds], rel=1e-12, nan_ok=True
    )
    assert [o["name"] for o in explained["outputs"]] == ["base_value", f"contribution_{feature}"]
    features = list(loaded.schema.feature_names)
    frame = pd.DataFrame(rows)[features]
    background = pd.DataFrame(loaded.metadata["explanations"]["background"])[features]
    base, contributions = shapley(loaded.pipeline.predict, frame, background, features)
    assert explained["outputs"][0]["data"] == pytest.approx([base] * len(rows), rel=1e-12)
    assert explained["outputs"][1]["data"] == pytest.approx(contributions[:, 0], rel=1e-9, abs=1e-9)


def test_model_and_server_ready_in_both_protocols(kserve_python, server, model):
    other = next(name for name in MODELS if name != model)

    answers = results(
        drive(
            kserve_python,
            server.url,
            {"op": "model_ready", "protocol": "v1", "model": model},
            {"op": "model_ready", "protocol": "v2", "model": model},
            {"op": "server_ready", "protocol": "v2"},
            {"op": "server_live", "protocol": "v2"},
            {"op": "model_ready", "protocol": "v2", "model": other},
        )
    )

    assert answers == [True, True, True, True, False]


def test_v1_server_live(kserve_python, server):
    """The V1 client reads liveness from GET / as {"status": "alive"}, as KServe serves it."""
    (live,) = results(drive(kserve_python, server.url, {"op": "server_live", "protocol": "v1"}))

    assert live is True


def test_bad_rows_are_http_errors_naming_the_row_and_field(kserve_python, server, model):
    rows, reasons = BAD_ROWS[model]

    answers = drive(
        kserve_python,
        server.url,
        {"op": "predict", "protocol": "v1", "model": model, "instances": rows},
        {"op": "infer", "protocol": "v2", "model": model, "inputs": tensors(rows)},
    )

    for answer in answers:
        error = answer["error"]
        assert (error["type"], error["status"]) == ("HTTPStatusError", 422)
        assert "1 of 2 rows are invalid: " in error["message"]
        for reason in reasons:
            assert reason in error["message"]


def test_v2_binary_tensors_are_refused_with_a_clear_400(kserve_python, server, model):
    (answer,) = drive(
        kserve_python,
        server.url,
        {
            "op": "infer",
            "protocol": "v2",
            "model": model,
            "inputs": tensors(ROWS[model]),
            "binary_data": True,
        },
    )

    assert answer["error"]["status"] == 400
    assert "binary tensor data is not supported" in answer["error"]["message"]


@pytest.mark.parametrize("model_name", MODELS)
def test_too_large_batch_is_refused_clearly(
    kserve_python, published: str, start_function: StartFunction, model_name: str
):
    server = start_function(TARGETS[model_name], MODEL_STORE=published, MAX_INSTANCES="1")
    rows = ROWS[model_name][:2]

    answers = drive(
        kserve_python,
        server.url,
        {"op": "predict", "protocol": "v1", "model": model_name, "instances": rows},
        {"op": "infer", "protocol": "v2", "model": model_name, "inputs": tensors(rows)},
        {"op": "predict", "protocol": "v1", "model": model_name, "instances": rows[:1]},
    )

    for answer in answers[:2]:
        assert answer["error"]["status"] == 413
        assert "at most 1 instances are accepted per request" in answer["error"]["message"]
    assert answers[2]["result"]["predictions"] == pytest.approx(expected(model_name, rows[:1]))


@pytest.mark.parametrize("model_name", MODELS)
def test_storage_outage_before_first_load(
    kserve_python, start_function: StartFunction, model_name: str
):
    storage = FakeGcs()  # its own emulator, so stopping it touches no other test
    storage.start()
    try:
        store = publish_all(storage, new_bucket(storage))
        server = start_function(
            TARGETS[model_name], MODEL_STORE=store, STORAGE_EMULATOR_HOST=storage.url
        )
        storage.stop()
        rows = ROWS[model_name]

        answers = drive(
            kserve_python,
            server.url,
            {"op": "server_live", "protocol": "v2"},
            {"op": "model_ready", "protocol": "v1", "model": model_name},
            {"op": "model_ready", "protocol": "v2", "model": model_name},
            {"op": "server_ready", "protocol": "v2"},
            {"op": "predict", "protocol": "v1", "model": model_name, "instances": rows},
            {"op": "infer", "protocol": "v2", "model": model_name, "inputs": tensors(rows)},
        )
    finally:
        storage.stop()

    assert [answer.get("result") for answer in answers[:3]] == [True, False, False]
    for answer in answers[3:]:
        assert answer["error"]["status"] == 503
    assert model_name in answers[4]["error"]["message"]
    assert model_name in answers[5]["error"]["message"]
