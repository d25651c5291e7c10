"""The Open Inference Protocol (KServe V2): server, health, model metadata and infer."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.http.support import (
    FAR_OUT,
    MODELS,
    PREDICTION,
    ROWS,
    RTOL,
    TARGETS,
    bounds,
    features,
    json_body,
    outside,
    predicted,
    shapley,
    strict_reason,
    version,
)

OUTSIDE = "outside_training_range"


def tensors(name: str, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """One input tensor per feature, as Open Inference clients send them."""
    return {
        "inputs": [
            {
                "name": feature,
                "shape": [len(rows)],
                "datatype": "BYTES" if feature == "gender" else "FP64",
                "data": [row[feature] for row in rows],
            }
            for feature in features(name)
        ],
        **extra,
    }


def outputs(response: Any) -> dict[str, list[Any]]:
    """Each output tensor's data by name: the flags as BYTES, every other output FP64."""
    assert response.status_code == 200, response.text
    for output in response.json()["outputs"]:
        assert output["datatype"] == ("BYTES" if output["name"] == OUTSIDE else "FP64")
        assert output["shape"] == [len(output["data"])]
    return {o["name"]: o["data"] for o in response.json()["outputs"]}


# --- server, health, metadata ----------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_server_metadata_and_health(clients: dict[str, TestClient], name: str) -> None:
    client = clients[name]

    server = client.get("/v2")
    live = client.get("/v2/health/live")
    ready = client.get("/v2/health/ready")
    model_ready = client.get(f"/v2/models/{name}/ready")

    assert server.json() == {"name": "marketcast", "version": "1", "extensions": []}
    assert live.json() == {"live": True}
    assert ready.json() == model_ready.json() == {"name": name, "ready": True}
    assert [r.status_code for r in (server, live, ready, model_ready)] == [200] * 4


@pytest.mark.parametrize("name", MODELS)
def test_model_metadata_lists_inputs_and_every_output(
    clients: dict[str, TestClient], name: str
) -> None:
    target = PREDICTION[name]

    metadata = clients[name].get(f"/v2/models/{name}").json()

    assert metadata["name"] == name
    assert metadata["versions"] == [version(name)]
    assert metadata["inputs"] == [
        {"name": f, "datatype": "BYTES" if f == "gender" else "FP64", "shape": [-1]}
        for f in features(name)
    ]
    assert [(o["name"], o["datatype"]) for o in metadata["outputs"]] == [
        (target, "FP64"),
        (f"{target}_lower", "FP64"),
        (f"{target}_upper", "FP64"),
        (OUTSIDE, "BYTES"),
        ("base_value", "FP64"),
        *((f"contribution_{f}", "FP64") for f in features(name)),
    ]


# --- versioned paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("prefix", ["", "/{function}"])
def test_the_live_versions_paths_answer_as_the_unversioned_ones(
    clients: dict[str, TestClient], name: str, prefix: str
) -> None:
    client = clients[name]
    base = prefix.format(function=TARGETS[name]) + f"/v2/models/{name}"
    versioned = f"{base}/versions/{version(name)}"

    pairs = [
        (client.get(base), client.get(versioned)),
        (client.get(f"{base}/ready"), client.get(f"{versioned}/ready")),
        (
            client.post(f"{base}/infer", json=tensors(name, ROWS[name])),
            client.post(f"{versioned}/infer", json=tensors(name, ROWS[name])),
        ),
    ]

    for unversioned, live in pairs:
        assert live.status_code == unversioned.status_code == 200
        assert live.json() == unversioned.json()


@pytest.mark.parametrize("suffix", ["", "/ready", "/infer"])
@pytest.mark.parametrize("other", ["0", "20251128T000000Z-00000000"])
def test_another_version_is_not_found(market: TestClient, suffix: str, other: str) -> None:
    path = f"/v2/models/market_trend/versions/{other}{suffix}"

    response = (
        market.post(path, json=tensors("market_trend", ROWS["market_trend"]))
        if suffix == "/infer"
        else market.get(path)
    )

    assert response.status_code == 404
    assert response.json() == {
        "error": f"version {other} is not served; the live version is {version('market_trend')}"
    }


# --- infer -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_infer_answers_the_target_tensor(clients: dict[str, TestClient], name: str) -> None:
    response = clients[name].post(f"/v2/models/{name}/infer", json=tensors(name, ROWS[name]))

    body = response.json()
    assert (body["model_name"], body["model_version"]) == (name, version(name))
    assert "id" not in body
    assert outputs(response) == {
        PREDICTION[name]: pytest.approx(predicted(name, ROWS[name]), rel=RTOL),
        OUTSIDE: [";".join(outside(name, row)) for row in ROWS[name]],
    }


def test_inputs_in_any_order_any_numeric_datatype_and_shape_n_by_1(
    customer: TestClient,
) -> None:
    rows = ROWS["customer_needs"]
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
            {"name": "age", "shape": [3, 1], "datatype": "INT64", "data": [35, 61, 18]},
        ],
    }

    response = customer.post("/v2/models/customer_needs/infer", json=body)

    assert response.json()["id"] == "req-7"
    assert outputs(response)["purchase_amount"] == pytest.approx(
        predicted("customer_needs", rows), rel=RTOL
    )


@pytest.mark.parametrize("name", MODELS)
def test_interval_and_explain_add_their_tensors(clients: dict[str, TestClient], name: str) -> None:
    target, rows = PREDICTION[name], ROWS[name]
    body = tensors(name, rows, parameters={"interval": 0.8, "explain": True})

    found = outputs(clients[name].post(f"/v2/models/{name}/infer", json=body))

    values, intervals = predicted(name, rows), bounds(name, rows, 0.8)
    assert list(found) == [
        target,
        f"{target}_lower",
        f"{target}_upper",
        OUTSIDE,
        "base_value",
        *(f"contribution_{f}" for f in features(name)),
    ]
    assert found[target] == pytest.approx(values, rel=RTOL)
    for at, bound in enumerate(("lower", "upper")):
        assert found[f"{target}_{bound}"] == [
            None if b is None else pytest.approx(b[at], rel=RTOL) for b in intervals
        ]
    assert found[OUTSIDE] == [";".join(outside(name, row)) for row in rows]
    for row, (at, value) in zip(rows, enumerate(values), strict=True):
        base, contributions = shapley(name, row)
        assert found["base_value"][at] == pytest.approx(base, rel=RTOL)
        for feature, contribution in contributions.items():
            assert found[f"contribution_{feature}"][at] == pytest.approx(
                contribution, rel=RTOL, abs=abs(value) * RTOL
            )


def test_requested_outputs_are_answered_in_the_order_asked(customer: TestClient) -> None:
    body = tensors(
        "customer_needs",
        ROWS["customer_needs"],
        parameters={"interval": 0.9, "explain": True},
        outputs=[{"name": "purchase_amount_upper"}, {"name": "contribution_age"}],
    )

    found = outputs(customer.post("/v2/models/customer_needs/infer", json=body))

    assert list(found) == ["purchase_amount_upper", "contribution_age"]
    intervals = bounds("customer_needs", ROWS["customer_needs"], 0.9)
    assert found["purchase_amount_upper"] == [
        None if b is None else pytest.approx(b[1], rel=RTOL) for b in intervals
    ]


def expected_outputs(name: str, rows: list[dict[str, Any]], level: float) -> dict[str, Any]:
    """What each output holds for `rows`, from the model itself (bounds at `level`)."""
    target, values = PREDICTION[name], predicted(name, rows)
    intervals = bounds(name, rows, level)
    explained = [shapley(name, row) for row in rows]
    found: dict[str, Any] = {
        target: pytest.approx(values, rel=RTOL),
        f"{target}_lower": [
            None if b is None else pytest.approx(b[0], rel=RTOL) for b in intervals
        ],
        f"{target}_upper": [
            None if b is None else pytest.approx(b[1], rel=RTOL) for b in intervals
        ],
        OUTSIDE: [";".join(outside(name, row)) for row in rows],
        "base_value": pytest.approx([base for base, _ in explained], rel=RTOL),
    }
    for feature in features(name):
        found[f"contribution_{feature}"] = [
            pytest.approx(contributions[feature], rel=RTOL, abs=abs(value) * RTOL)
            for (_, contributions), value in zip(explained, values, strict=True)
        ]
    return found


def metadata_outputs(client: TestClient, name: str) -> list[str]:
    return [o["name"] for o in client.get(f"/v2/models/{name}").json()["outputs"]]


@pytest.mark.parametrize("name", MODELS)
def test_every_output_in_the_metadata_can_be_asked_for_by_name_alone(
    clients: dict[str, TestClient], name: str
) -> None:
    client, rows = clients[name], ROWS[name]
    listed = metadata_outputs(client, name)
    expected = expected_outputs(name, rows, 0.9)  # no level sent: the default
    assert listed == list(expected)

    for output in listed:
        body = tensors(name, rows, outputs=[{"name": output}])

        found = outputs(client.post(f"/v2/models/{name}/infer", json=body))

        assert found == {output: expected[output]}, output


@pytest.mark.parametrize("name", MODELS)
def test_any_two_outputs_can_be_asked_for_together_in_either_order(
    clients: dict[str, TestClient], name: str
) -> None:
    client, rows = clients[name], ROWS[name]
    expected = expected_outputs(name, rows, 0.9)

    for first, second in itertools.permutations(metadata_outputs(client, name), 2):
        body = tensors(name, rows, outputs=[{"name": first}, {"name": second}])

        found = outputs(client.post(f"/v2/models/{name}/infer", json=body))

        assert list(found) == [first, second]
        assert found == {first: expected[first], second: expected[second]}, (first, second)


def test_a_level_in_parameters_sets_the_bounds_asked_for_by_name(market: TestClient) -> None:
    rows, asked = ROWS["market_trend"], ["future_sales_upper", "future_sales_lower"]
    body = tensors(
        "market_trend",
        rows,
        parameters={"interval": 0.8},
        outputs=[{"name": name} for name in asked],
    )

    found = outputs(market.post("/v2/models/market_trend/infer", json=body))

    at_80, at_90 = (expected_outputs("market_trend", rows, level) for level in (0.8, 0.9))
    assert found == {name: at_80[name] for name in asked}
    assert found != {name: at_90[name] for name in asked}


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "application/json", None]
)
def test_infer_reads_curls_default_form_type_and_no_type_as_json(
    customer: TestClient, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    body = json_body(tensors("customer_needs", ROWS["customer_needs"]))

    response = customer.post("/v2/models/customer_needs/infer", content=body, headers=headers)

    assert outputs(response)["purchase_amount"] == pytest.approx(
        predicted("customer_needs", ROWS["customer_needs"]), rel=RTOL
    )


def test_a_binary_output_request_without_named_outputs_is_answered_in_json(
    market: TestClient,
) -> None:
    body = tensors("market_trend", ROWS["market_trend"], parameters={"binary_data_output": True})

    found = outputs(market.post("/v2/models/market_trend/infer", json=body))

    assert found == {
        "future_sales": pytest.approx(predicted("market_trend", ROWS["market_trend"]), rel=RTOL),
        OUTSIDE: [";".join(outside("market_trend", row)) for row in ROWS["market_trend"]],
    }


# --- applicability: outside the training range -----------------------------------------------


def test_a_row_beyond_the_training_range_is_flagged_in_a_bytes_tensor(
    customer: TestClient,
) -> None:
    rows = [ROWS["customer_needs"][0], FAR_OUT]
    flagged = outside("customer_needs", FAR_OUT)
    assert len(flagged) > 1  # joined by ";" as a CSV cell is
    body = tensors("customer_needs", rows, parameters={"interval": 0.9})

    found = outputs(customer.post("/v2/models/customer_needs/infer", json=body))

    assert found[OUTSIDE] == ["", ";".join(flagged)]
    assert found["purchase_amount"] == pytest.approx(predicted("customer_needs", rows), rel=RTOL)
    assert found["purchase_amount_lower"][0] is not None
    assert found["purchase_amount_lower"][1] is found["purchase_amount_upper"][1] is None


def test_strict_in_parameters_refuses_a_row_outside_the_training_range(
    customer: TestClient,
) -> None:
    rows = [ROWS["customer_needs"][0], FAR_OUT]
    body = tensors("customer_needs", rows, parameters={"strict": True})

    response = customer.post("/v2/models/customer_needs/infer", json=body)

    assert response.status_code == 422
    faults = "; ".join(
        f"row 1, {feature}: {strict_reason('customer_needs', feature)}"
        for feature in outside("customer_needs", FAR_OUT)
    )
    assert response.json() == {"error": f"1 of 2 rows are invalid: {faults}"}


def test_the_flags_can_be_the_one_output_requested(customer: TestClient) -> None:
    rows = [FAR_OUT, ROWS["customer_needs"][0]]
    body = tensors("customer_needs", rows, outputs=[{"name": OUTSIDE}])

    found = outputs(customer.post("/v2/models/customer_needs/infer", json=body))

    assert found == {OUTSIDE: [";".join(outside("customer_needs", row)) for row in rows]}


# --- errors ------------------------------------------------------------------------------------


def test_row_faults_name_row_and_field_in_one_message(customer: TestClient) -> None:
    rows = [ROWS["customer_needs"][0], {"age": 300, "gender": "robot", "income": 1}]

    response = customer.post(
        "/v2/models/customer_needs/infer", json=tensors("customer_needs", rows)
    )

    assert response.status_code == 422
    assert response.json() == {
        "error": "1 of 2 rows are invalid: row 1, age: must be between 18 and 100 (received 300); "
        'row 1, gender: must be one of female, male, other (received "robot")'
    }


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        (lambda b: b["inputs"].pop(1), 422, "inputs do not match the model: gender: missing input"),
        (
            lambda b: b["inputs"].append({**b["inputs"][0], "name": "email"}),
            422,
            "inputs do not match the model: email: unknown input",
        ),
        (
            lambda b: b.update(outputs=[{"name": "purchase_amount"}, {"name": "median"}]),
            422,
            "unknown output requested: outputs.median: no such output; the model's outputs are "
            "purchase_amount, purchase_amount_lower, purchase_amount_upper, "
            "outside_training_range, base_value, contribution_age, contribution_gender, "
            "contribution_income",
        ),
        (
            lambda b: b["inputs"][0].update(shape=[3]),
            400,
            "input 'age': shape says 3 rows, data has 2",
        ),
        (
            lambda b: b["inputs"][0].update(shape=[2, 2]),
            400,
            "input 'age': shape must be [n] or [n, 1]",
        ),
        (
            lambda b: b["inputs"][0].update(datatype="FLOAT"),
            400,
            "input 'age': unknown datatype 'FLOAT'",
        ),
        (
            lambda b: b["inputs"][2].update(shape=[1], data=[1]),
            400,
            "every input tensor must hold the same number of rows",
        ),
        (lambda b: b.update(inputs=[]), 400, '"inputs" must be a non-empty list of tensors'),
        (
            lambda b: b["inputs"][0].update(parameters={"binary_data_size": 16}),
            400,
            "binary tensor data is not supported; send JSON tensors (binary_data=False)",
        ),
        (
            lambda b: b.update(
                outputs=[{"name": "purchase_amount", "parameters": {"binary_data": True}}]
            ),
            400,
            "binary tensor data is not supported; send JSON tensors (binary_data=False)",
        ),
    ],
    ids=[
        "missing input",
        "unknown input",
        "unknown output",
        "shape and data disagree",
        "shape not a column",
        "unknown datatype",
        "ragged tensors",
        "no inputs",
        "binary input",
        "binary output",
    ],
)
def test_bad_requests_say_what_is_wrong(
    customer: TestClient, change: Any, status: int, message: str
) -> None:
    body = tensors("customer_needs", ROWS["customer_needs"][:2])
    change(body)

    response = customer.post("/v2/models/customer_needs/infer", json=body)

    assert response.status_code == status
    assert response.json() == {"error": message}


def test_a_binary_request_is_refused_by_its_header(customer: TestClient) -> None:
    header = json_body(
        {
            "inputs": [
                {
                    "name": "age",
                    "shape": [1],
                    "datatype": "FP64",
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    )

    response = customer.post(
        "/v2/models/customer_needs/infer",
        content=header + b"\x00" * 8,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )

    assert response.status_code == 400
    assert response.json() == {
        "error": "binary tensor data is not supported; send JSON tensors (binary_data=False)"
    }
