"""BigQuery remote-function batches, KServe V1 and the Open Inference Protocol over raw HTTP.

Expected answers come from the bundled model itself (its pipeline, and its metadata read by the
definitions in tests/expected.py), never from the code that serves it.
"""

from __future__ import annotations

import csv
import io
import json

import orjson
import pandas as pd
import pytest
import requests

from shared.store import load_current, publish
from tests import expected as reference
from tests.integration.conftest import (
    BUNDLED,
    TARGETS,
    StartFunction,
    bundled_version,
    gcs_backend,
    new_bucket,
    publish_all,
)
from tests.integration.support import FakeGcs, FunctionServer

# The last call's income (0) is valid, but below any the model was fit on.
CUSTOMER_CALLS = [[35, "F", 52000], ["61", "male", "90000.5"], [18.0, "Other", 0]]
CANONICAL = {"F": "female", "male": "male", "Other": "other"}
OUTSIDE = "outside_training_range"
FORM = "application/x-www-form-urlencoded"  # what `curl -d` sends without -H
WITHHELD = "outside the training range: not calibrated there"


def canonical(name: str, rows: list[list[object]]) -> pd.DataFrame:
    """Calls (values in feature order) as the model reads them."""
    model = load_current(BUNDLED, name)
    frame = pd.DataFrame(rows, columns=list(model.schema.feature_names))
    for column in frame.columns:
        frame[column] = (
            frame[column].map(CANONICAL) if column == "gender" else frame[column].astype(float)
        )
    return frame


def in_process(name: str, rows: list[list[object]]) -> list[float]:
    """The model's own pipeline on `rows`, raised to the target's minimum."""
    model = load_current(BUNDLED, name)
    values = model.pipeline.predict(canonical(name, rows))
    return [reference.in_domain(model.metadata, float(v)) for v in values]


def expected_bounds(
    name: str, rows: list[list[object]], level: float
) -> list[tuple[float, float] | None]:
    """Each row's interval by the normalised split-conformal definition; None where withheld."""
    metadata = load_current(BUNDLED, name).metadata
    records = canonical(name, rows).to_dict("records")
    return reference.intervals(metadata, records, in_process(name, rows), level)


def expected_flags(name: str, rows: list[list[object]]) -> list[list[str]]:
    metadata = load_current(BUNDLED, name).metadata
    return [reference.outside(metadata, row) for row in canonical(name, rows).to_dict("records")]


def bigquery_request(calls: list[list[object]], context: dict[str, str] | None = None) -> dict:
    return {
        "requestId": "124ab1c",
        "caller": "//bigquery.googleapis.com/projects/demo/jobs/job-1",
        "sessionUser": "analyst@example.com",
        "userDefinedContext": context or {},
        "calls": calls,
    }


@pytest.fixture
def customer(running: dict[str, FunctionServer]) -> FunctionServer:
    return running["customer_needs"]


@pytest.fixture
def market(running: dict[str, FunctionServer]) -> FunctionServer:
    return running["market_trend"]


# --- BigQuery remote functions --------------------------------------------------------------


def test_bigquery_batch_gets_replies_in_order(customer: FunctionServer):
    response = requests.post(customer.url, json=bigquery_request(CUSTOMER_CALLS), timeout=30)

    assert response.status_code == 200, response.text
    assert response.json()["replies"] == pytest.approx(in_process("customer_needs", CUSTOMER_CALLS))


def test_bigquery_null_argument_gives_null_reply(customer: FunctionServer):
    calls = [CUSTOMER_CALLS[0], [None, "f", 1000], CUSTOMER_CALLS[1]]

    replies = requests.post(customer.url, json=bigquery_request(calls), timeout=30).json()[
        "replies"
    ]

    assert replies[1] is None
    assert [replies[0], replies[2]] == pytest.approx(
        in_process("customer_needs", [CUSTOMER_CALLS[0], CUSTOMER_CALLS[1]])
    )


def test_bigquery_repeated_identical_requests_get_identical_replies(market: FunctionServer):
    request = bigquery_request([[9000, 300, 13000], [4000.5, 200, 6000]])

    first = requests.post(market.url, json=request, timeout=30)
    second = requests.post(market.url, json=request, timeout=30)

    assert first.status_code == second.status_code == 200
    assert first.content == second.content


@pytest.mark.parametrize("output", ["lower", "upper", "interval", "explain", "all"])
def test_bigquery_context_chooses_the_output(customer: FunctionServer, output: str):
    context = {"output": output, "interval_level": "0.8"}

    response = requests.post(
        customer.url, json=bigquery_request(CUSTOMER_CALLS, context), timeout=30
    )

    assert response.status_code == 200, response.text
    replies = response.json()["replies"]
    predictions = in_process("customer_needs", CUSTOMER_CALLS)
    bounds = expected_bounds("customer_needs", CUSTOMER_CALLS, 0.8)
    flags = expected_flags("customer_needs", CUSTOMER_CALLS)
    assert bounds[-1] is None, "the last call lies outside the training range"
    for reply, predicted, interval, flagged in zip(
        replies, predictions, bounds, flags, strict=True
    ):
        if output in ("lower", "upper"):  # a bare number, null where withheld
            at = 0 if output == "lower" else 1
            assert reply == (None if interval is None else pytest.approx(interval[at]))
        else:
            assert reply["purchase_amount"] == pytest.approx(predicted)
            assert reply[OUTSIDE] == flagged
            if output in ("interval", "all"):
                assert reply["interval"] == (
                    {"level": 0.8, "lower": None, "upper": None, "withheld": WITHHELD}
                    if interval is None
                    else pytest.approx({"level": 0.8, "lower": interval[0], "upper": interval[1]})
                )
            if output in ("explain", "all"):
                total = reply["base_value"] + sum(reply["contributions"].values())
                assert total == pytest.approx(predicted, rel=1e-9)


def test_bigquery_bad_row_fails_fast_naming_row_and_field(customer: FunctionServer):
    calls = [CUSTOMER_CALLS[0], [35, "robot", 1000], [300, "f", 1000]]

    response = requests.post(customer.url, json=bigquery_request(calls), timeout=30)

    assert response.status_code == 400  # not retried: the query fails with this message
    message = response.json()["errorMessage"]
    assert "row 1, gender: must be one of female, male, other" in message
    assert "row 2, age: must be between 18 and 100" in message


def test_bigquery_strict_fails_the_query_naming_the_call_outside_the_training_range(
    customer: FunctionServer,
):
    metadata = load_current(BUNDLED, "customer_needs").metadata
    calls = [CUSTOMER_CALLS[0], [None, "f", 1000], CUSTOMER_CALLS[2]]  # the last: income 0
    reason = reference.strict_reason(metadata, "income")

    strict = requests.post(
        customer.url, json=bigquery_request(calls, {"strict": "true"}), timeout=30
    )
    lenient = requests.post(
        customer.url, json=bigquery_request(calls, {"strict": "false"}), timeout=30
    )

    assert strict.status_code == 400  # not retried: the query fails with this message
    assert f"row 2, income: {reason}" in strict.json()["errorMessage"]  # NULL calls counted
    assert lenient.status_code == 200, lenient.text
    assert lenient.json()["replies"][1] is None


@pytest.mark.parametrize(
    ("calls", "context", "expected"),
    [
        ([[35, "f"]], {}, "row 0: expected 3 arguments (age, gender, income)"),
        ([[35, "f", 1]], {"output": "everything"}, "userDefinedContext.output"),
        (
            [[35, "f", 1]],
            {"output": "lower", "interval_level": "2"},
            "userDefinedContext.interval_level",
        ),
    ],
)
def test_bigquery_malformed_batches_fail_fast(customer, calls, context, expected):
    response = requests.post(customer.url, json=bigquery_request(calls, context), timeout=30)

    assert response.status_code == 400
    assert expected in response.json()["errorMessage"]


def test_bigquery_batch_over_the_limit_is_not_retried(
    published: str, start_function: StartFunction
):
    server = start_function(TARGETS["customer_needs"], MODEL_STORE=published, MAX_INSTANCES="2")

    response = requests.post(server.url, json=bigquery_request(CUSTOMER_CALLS), timeout=30)

    assert response.status_code == 400
    assert "max_batching_rows" in response.json()["errorMessage"]


def outage_env(storage: FakeGcs) -> dict[str, str]:
    """A function on the bundled models in an emulator of its own, which the test then stops:
    the emulator the other tests share keeps serving."""
    return {
        "MODEL_STORE": publish_all(storage, new_bucket(storage)),
        "STORAGE_EMULATOR_HOST": storage.url,
    }


def test_bigquery_storage_outage_is_retryable(
    restartable_gcs: FakeGcs, start_function: StartFunction
):
    server = start_function(TARGETS["customer_needs"], **outage_env(restartable_gcs))
    restartable_gcs.stop()

    response = requests.post(server.url, json=bigquery_request(CUSTOMER_CALLS), timeout=30)

    assert response.status_code == 503  # BigQuery retries 503
    assert "errorMessage" in response.json()


# --- KServe V1 --------------------------------------------------------------------------------


def test_v1_status_and_predict_with_objects_and_lists(customer: FunctionServer):
    status = requests.get(f"{customer.url}/v1/models/customer_needs", timeout=30)
    objects = [dict(zip(("age", "gender", "income"), call, strict=True)) for call in CUSTOMER_CALLS]

    by_object = requests.post(
        f"{customer.url}/v1/models/customer_needs:predict", json={"instances": objects}, timeout=30
    )
    by_list = requests.post(
        f"{customer.url}/v1/models/customer_needs:predict",
        json={"instances": CUSTOMER_CALLS},
        timeout=30,
    )

    assert status.json() == {"name": "customer_needs", "ready": True}
    expected = in_process("customer_needs", CUSTOMER_CALLS)
    assert by_object.json()["predictions"] == pytest.approx(expected)
    assert by_list.json()["predictions"] == pytest.approx(expected)


def test_v1_lists_its_model_takes_rows_under_inputs_and_reads_curls_form_type(
    customer: FunctionServer,
):
    predict = f"{customer.url}/v1/models/customer_needs:predict"
    objects = [dict(zip(("age", "gender", "income"), call, strict=True)) for call in CUSTOMER_CALLS]

    listed = requests.get(f"{customer.url}/v1/models", timeout=30)
    by_inputs = requests.post(predict, json={"inputs": CUSTOMER_CALLS}, timeout=30)
    as_curl_sends = requests.post(
        predict,
        data=json.dumps({"inputs": objects, "parameters": {"interval": 0.9}}),
        headers={"Content-Type": FORM},
        timeout=30,
    )
    both = requests.post(predict, json={"instances": objects, "inputs": objects}, timeout=30)

    assert listed.status_code == 200, listed.text
    assert listed.json() == {"models": ["customer_needs"]}
    expected = in_process("customer_needs", CUSTOMER_CALLS)
    assert by_inputs.status_code == 200, by_inputs.text
    assert by_inputs.json()["predictions"] == pytest.approx(expected)
    assert as_curl_sends.status_code == 200, as_curl_sends.text
    bounds = expected_bounds("customer_needs", CUSTOMER_CALLS, 0.9)
    for answer, value, interval in zip(
        as_curl_sends.json()["predictions"], expected, bounds, strict=True
    ):
        assert answer["purchase_amount"] == pytest.approx(value)
        assert (answer["interval"]["lower"], answer["interval"]["upper"]) == (
            (None, None) if interval is None else pytest.approx(interval)
        )
    assert both.status_code == 400
    assert both.json() == {"error": 'a V1 request has "instances" or "inputs", not both'}


def test_v1_errors_use_the_protocol_shape(customer: FunctionServer):
    bad = requests.post(
        f"{customer.url}/v1/models/customer_needs:predict",
        json={"instances": [[35, "f"], {"age": 35, "gender": "f", "income": -1}]},
        timeout=30,
    )
    other_model = requests.get(f"{customer.url}/v1/models/market_trend", timeout=30)

    assert bad.status_code == 422
    assert "row 0: must be a JSON object or a list of 3 values" in bad.json()["error"]
    assert other_model.status_code == 404
    assert isinstance(other_model.json()["error"], str)


# --- Open Inference Protocol (V2) -----------------------------------------------------------


def test_v2_health_server_and_model_metadata(market: FunctionServer):
    live = requests.get(f"{market.url}/v2/health/live", timeout=30)
    ready = requests.get(f"{market.url}/v2/health/ready", timeout=30)
    model_ready = requests.get(f"{market.url}/v2/models/market_trend/ready", timeout=30)
    metadata = requests.get(f"{market.url}/v2/models/market_trend", timeout=30).json()
    server = requests.get(f"{market.url}/v2", timeout=30).json()

    assert (live.status_code, ready.status_code, model_ready.status_code) == (200, 200, 200)
    assert server["name"] == "marketcast"
    assert metadata["name"] == "market_trend"
    assert metadata["versions"] == [bundled_version("market_trend")]
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        ("sales", "FP64"),
        ("population", "FP64"),
        ("gdp", "FP64"),
    ]
    assert metadata["outputs"][0] == {"name": "future_sales", "datatype": "FP64", "shape": [-1]}


def test_v2_infer_with_columnar_inputs_of_mixed_types(customer: FunctionServer):
    body = {
        "id": "req-7",
        "inputs": [
            {
                "name": "gender",
                "shape": [3, 1],
                "datatype": "BYTES",
                "data": [["F"], ["male"], ["Other"]],
            },
            {"name": "income", "shape": [3], "datatype": "FP64", "data": [52000, 90000.5, 0]},
            {"name": "age", "shape": [3], "datatype": "INT64", "data": [35, 61, 18]},
        ],
        "parameters": {"interval": 0.9},
        "outputs": [{"name": "purchase_amount"}, {"name": "purchase_amount_upper"}],
    }

    response = requests.post(
        f"{customer.url}/v2/models/customer_needs/infer", json=body, timeout=30
    )

    assert response.status_code == 200, response.text
    result = response.json()
    assert result["id"] == "req-7"
    assert result["model_version"] == bundled_version("customer_needs")
    outputs = {o["name"]: o for o in result["outputs"]}
    assert set(outputs) == {"purchase_amount", "purchase_amount_upper"}
    assert outputs["purchase_amount"]["shape"] == [3]
    expected = in_process("customer_needs", CUSTOMER_CALLS)
    assert outputs["purchase_amount"]["data"] == pytest.approx(expected)
    bounds = expected_bounds("customer_needs", CUSTOMER_CALLS, 0.9)
    assert bounds[-1] is None, "the last row lies outside the training range"
    assert outputs["purchase_amount_upper"]["data"] == [
        None if interval is None else pytest.approx(interval[1]) for interval in bounds
    ]


def customer_tensors() -> list[dict[str, object]]:
    return [
        {
            "name": name,
            "shape": [len(CUSTOMER_CALLS)],
            "datatype": "BYTES" if name == "gender" else "FP64",
            "data": [call[at] for call in CUSTOMER_CALLS],
        }
        for at, name in enumerate(("age", "gender", "income"))
    ]


def test_v2_every_output_in_the_metadata_can_be_asked_for_by_name_alone(
    customer: FunctionServer,
):
    infer = f"{customer.url}/v2/models/customer_needs/infer"
    metadata = requests.get(f"{customer.url}/v2/models/customer_needs", timeout=30).json()
    names = [output["name"] for output in metadata["outputs"]]

    alone = {
        name: requests.post(
            infer, json={"inputs": customer_tensors(), "outputs": [{"name": name}]}, timeout=30
        )
        for name in names
    }
    together = requests.post(
        infer,
        data=json.dumps(
            {
                "inputs": customer_tensors(),
                "outputs": [{"name": "contribution_income"}, {"name": "purchase_amount_upper"}],
            }
        ),
        headers={"Content-Type": FORM},  # as `curl -d` sends it
        timeout=30,
    )

    found = {}
    for name, response in alone.items():
        assert response.status_code == 200, (name, response.text)
        [output] = response.json()["outputs"]
        assert output["name"] == name
        found[name] = output["data"]
    assert found["purchase_amount"] == pytest.approx(in_process("customer_needs", CUSTOMER_CALLS))
    bounds = expected_bounds("customer_needs", CUSTOMER_CALLS, 0.9)  # no level sent: 0.9
    assert bounds[-1] is None, "the last row lies outside the training range"
    for at, bound in enumerate(("lower", "upper")):
        assert found[f"purchase_amount_{bound}"] == [
            None if interval is None else pytest.approx(interval[at]) for interval in bounds
        ]
    assert found[OUTSIDE] == [";".join(f) for f in expected_flags("customer_needs", CUSTOMER_CALLS)]
    contributions = [found[f"contribution_{f}"] for f in ("age", "gender", "income")]
    totals = [
        base + sum(row) for base, *row in zip(found["base_value"], *contributions, strict=True)
    ]
    assert totals == pytest.approx(found["purchase_amount"], rel=1e-9)
    assert together.status_code == 200, together.text
    assert {o["name"]: o["data"] for o in together.json()["outputs"]} == {
        "contribution_income": pytest.approx(found["contribution_income"], rel=1e-12),
        "purchase_amount_upper": [
            None if b is None else pytest.approx(b, rel=1e-12)
            for b in found["purchase_amount_upper"]
        ],
    }


def test_v2_outputs_a_model_was_published_without_are_named_in_a_422(
    gcs: FakeGcs, bucket: str, start_function: StartFunction
):
    version = bundled_version("customer_needs")
    metadata = orjson.loads(BUNDLED.read(f"customer_needs/{version}/metadata.json"))
    bare = {k: v for k, v in metadata.items() if k not in ("intervals", "explanations")}
    artifact = BUNDLED.read(f"customer_needs/{version}/model.joblib")
    publish(gcs_backend(gcs, bucket), "customer_needs", version, artifact, bare)
    server = start_function(TARGETS["customer_needs"], MODEL_STORE=f"gs://{bucket}/models")
    infer = f"{server.url}/v2/models/customer_needs/infer"

    def asking(*names: str) -> requests.Response:
        outputs = [{"name": name} for name in names]
        return requests.post(
            infer, json={"inputs": customer_tensors(), "outputs": outputs}, timeout=30
        )

    bounds = asking("purchase_amount", "purchase_amount_lower")
    explained = asking("base_value")
    plain = asking("purchase_amount", OUTSIDE)
    unknown = asking("purchase_amount_median")

    assert bounds.status_code == explained.status_code == 422, bounds.text
    assert bounds.json() == {
        "error": "requested output is not available for this model: "
        "outputs.purchase_amount_lower: not available for this model"
    }
    assert explained.json() == {
        "error": "requested output is not available for this model: "
        "outputs.base_value: not available for this model"
    }
    assert plain.status_code == 200, plain.text
    assert unknown.status_code == 422
    assert unknown.json()["error"].startswith(
        "unknown output requested: outputs.purchase_amount_median: no such output; "
        "the model's outputs are purchase_amount, purchase_amount_lower,"
    )


def test_v2_versioned_path_serves_only_the_live_version(market: FunctionServer):
    live = bundled_version("market_trend")
    body = {
        "inputs": [
            {"name": n, "shape": [1], "datatype": "FP64", "data": [v]}
            for n, v in (("sales", 9000), ("population", 300), ("gdp", 13000))
        ]
    }

    current = requests.post(
        f"{market.url}/v2/models/market_trend/versions/{live}/infer", json=body, timeout=30
    )
    old = requests.post(
        f"{market.url}/v2/models/market_trend/versions/0/infer", json=body, timeout=30
    )

    assert current.status_code == 200
    assert old.status_code == 404
    assert "live version" in old.json()["error"]


@pytest.mark.parametrize(
    ("inputs", "status", "expected"),
    [
        (
            [{"name": "age", "shape": [1], "datatype": "FP64", "data": [30]}],
            422,
            "gender: missing input",
        ),
        (
            [
                {"name": "age", "shape": [1], "datatype": "FP64", "data": ["old"]},
                {"name": "gender", "shape": [1], "datatype": "BYTES", "data": ["f"]},
                {"name": "income", "shape": [1], "datatype": "FP64", "data": [1]},
            ],
            422,
            "row 0, age: must be a number",
        ),
        (
            [{"name": "age", "shape": [2], "datatype": "FP64", "data": [30]}],
            400,
            "shape says 2 rows",
        ),
        (
            [{"name": "age", "shape": [1], "datatype": "FLOAT", "data": [30]}],
            400,
            "unknown datatype",
        ),
        (
            [
                {
                    "name": "age",
                    "shape": [1],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 8},
                }
            ],
            400,
            "binary tensor data is not supported",
        ),
    ],
)
def test_v2_bad_requests_name_what_is_wrong(customer, inputs, status, expected):
    response = requests.post(
        f"{customer.url}/v2/models/customer_needs/infer", json={"inputs": inputs}, timeout=30
    )

    assert response.status_code == status
    assert expected in response.json()["error"]


def test_v2_binary_request_is_refused_clearly(customer: FunctionServer):
    header = (
        b'{"inputs":[{"name":"age","shape":[1],"datatype":"FP64",'
        b'"parameters":{"binary_data_size":8}}]}'
    )

    response = requests.post(
        f"{customer.url}/v2/models/customer_needs/infer",
        data=header + b"\x00" * 8,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
        timeout=30,
    )

    assert response.status_code == 400
    assert "binary tensor data is not supported" in response.json()["error"]


def test_v2_ready_is_false_while_storage_is_down(
    restartable_gcs: FakeGcs, start_function: StartFunction
):
    server = start_function(TARGETS["market_trend"], **outage_env(restartable_gcs))
    restartable_gcs.stop()

    ready = requests.get(f"{server.url}/v2/health/ready", timeout=30)
    infer = requests.post(
        f"{server.url}/v2/models/market_trend/infer", json={"inputs": []}, timeout=30
    )

    assert ready.status_code == 503
    assert ready.json()["ready"] is False
    assert infer.status_code in (400, 503)


def test_every_protocol_path_also_answers_under_the_function_name(customer: FunctionServer):
    response = requests.get(
        f"{customer.url}/predict_customer_needs/v2/models/customer_needs/ready", timeout=30
    )

    assert response.status_code == 200


# --- every format, the same rows -------------------------------------------------------------


def test_every_format_gives_the_same_predictions(customer: FunctionServer):
    objects = [dict(zip(("age", "gender", "income"), c, strict=True)) for c in CUSTOMER_CALLS]
    many = objects * 30  # over the fast path's row limit: answered by the batch path
    csv_body = "age,gender,income\n" + "".join(f"{a},{g},{i}\n" for a, g, i in CUSTOMER_CALLS)
    v2 = {
        "inputs": [
            {
                "name": n,
                "shape": [3],
                "datatype": "BYTES" if n == "gender" else "FP64",
                "data": [o[n] for o in objects],
            }
            for n in ("age", "gender", "income")
        ]
    }

    fast = requests.post(customer.url, json={"instances": objects}, timeout=30).json()
    batch = requests.post(customer.url, json={"instances": many}, timeout=30).json()
    table = requests.post(
        customer.url, data=csv_body, headers={"Content-Type": "text/csv"}, timeout=30
    )
    tensors = requests.post(
        f"{customer.url}/v2/models/customer_needs/infer", json=v2, timeout=30
    ).json()
    replies = requests.post(customer.url, json=bigquery_request(CUSTOMER_CALLS), timeout=30).json()

    expected = in_process("customer_needs", CUSTOMER_CALLS)
    flags = expected_flags("customer_needs", CUSTOMER_CALLS)
    assert fast["predictions"] == pytest.approx(expected, rel=1e-9)
    assert batch["predictions"] == pytest.approx(expected * 30, rel=1e-9)
    assert fast[OUTSIDE] == flags
    assert batch[OUTSIDE] == flags * 30
    rows = list(csv.DictReader(io.StringIO(table.text)))
    assert [float(row["purchase_amount"]) for row in rows] == pytest.approx(expected, rel=1e-9)
    assert [row[OUTSIDE] for row in rows] == [";".join(names) for names in flags]
    outputs = {output["name"]: output["data"] for output in tensors["outputs"]}
    assert outputs["purchase_amount"] == pytest.approx(expected, rel=1e-9)
    assert outputs[OUTSIDE] == [";".join(names) for names in flags]
    assert replies["replies"] == pytest.approx(expected, rel=1e-9)


def test_every_format_names_the_same_faults(customer: FunctionServer):
    calls = [[35, "f", 1000], ["abc", "robot", -1]]
    objects = [dict(zip(("age", "gender", "income"), c, strict=True)) for c in calls]
    faults = [
        (1, "age", "must be a number"),
        (1, "gender", "must be one of female, male, other"),
        (1, "income", "must be between 0 and 1e+07"),
    ]
    csv_body = "age,gender,income\n35,f,1000\nabc,robot,-1\n"

    fast = requests.post(customer.url, json={"instances": objects}, timeout=30)
    batch = requests.post(
        customer.url, json={"instances": objects, "parameters": {"explain": True}}, timeout=30
    )
    table = requests.post(
        customer.url, data=csv_body, headers={"Content-Type": "text/csv"}, timeout=30
    )
    replies = requests.post(customer.url, json=bigquery_request(calls), timeout=30)

    for response in (fast, batch, table):
        assert response.status_code == 422
        details = response.json()["error"]["details"]
        assert [(d["row"], d["field"], d["reason"]) for d in details] == faults
        assert response.json()["error"]["message"] == "1 of 2 rows are invalid"
    message = replies.json()["errorMessage"]
    for row, field, reason in faults:
        assert f"row {row}, {field}: {reason}" in message
