"""KServe V1: GET /v1/models, GET /v1/models/<model> and POST /v1/models/<model>:predict."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.http.support import (
    MODELS,
    PREDICTION,
    RTOL,
    TARGETS,
    bounds,
    features,
    outside,
    predicted,
    strict_reason,
    version,
)

FORM = "application/x-www-form-urlencoded"  # what `curl -d` sends without -H
ROWS = {
    "customer_needs": [
        {"age": 35, "gender": "female", "income": 52000},
        {"age": 61, "gender": "male", "income": 90000.5},
    ],
    "market_trend": [
        {"sales": 9000, "population": 300.5, "gdp": 13000},
        {"sales": 4000.5, "population": 200, "gdp": 6000},
    ],
}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("prefix", ["", "/{function}"])
def test_status_says_the_model_is_ready(
    clients: dict[str, TestClient], name: str, prefix: str
) -> None:
    response = clients[name].get(prefix.format(function=TARGETS[name]) + f"/v1/models/{name}")

    assert response.status_code == 200, response.text
    assert response.json() == {"name": name, "ready": True}
    assert response.headers["X-Model-Version"] == version(name)


@pytest.mark.parametrize("name", MODELS)
def test_predict_takes_objects_and_lists_in_feature_order(
    clients: dict[str, TestClient], name: str
) -> None:
    path = f"/v1/models/{name}:predict"
    lists = [[row[f] for f in features(name)] for row in ROWS[name]]

    by_object = clients[name].post(path, json={"instances": ROWS[name]})
    by_list = clients[name].post(path, json={"instances": lists})

    assert by_object.status_code == by_list.status_code == 200
    expected = predicted(name, ROWS[name])
    assert by_object.json()["predictions"] == pytest.approx(expected, rel=RTOL)
    assert by_list.json() == by_object.json()
    assert by_object.json()["model"] == {"name": name, "version": version(name)}


def test_predict_under_the_function_name_without_a_content_type(customer: TestClient) -> None:
    response = customer.post(
        f"/{TARGETS['customer_needs']}/v1/models/customer_needs:predict",
        content=b'{"instances": [[35, "F", 52000]]}',
    )

    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx(
        predicted("customer_needs", ROWS["customer_needs"][:1]), rel=RTOL
    )


def test_predict_takes_parameters_as_the_root_does(market: TestClient) -> None:
    response = market.post(
        "/v1/models/market_trend:predict",
        json={"instances": ROWS["market_trend"], "parameters": {"interval": 0.9}},
    )

    assert response.status_code == 200, response.text
    rows = ROWS["market_trend"]
    expected = zip(predicted("market_trend", rows), bounds("market_trend", rows, 0.9), strict=True)
    for answer, row, (value, interval) in zip(
        response.json()["predictions"], rows, expected, strict=True
    ):
        assert interval is not None
        assert answer["future_sales"] == pytest.approx(value, rel=RTOL)
        assert answer["interval"]["lower"] == pytest.approx(interval[0], rel=RTOL)
        assert answer["interval"]["upper"] == pytest.approx(interval[1], rel=RTOL)
        assert answer["outside_training_range"] == outside("market_trend", row)


def test_predict_takes_strict_as_the_root_does(customer: TestClient) -> None:
    far_out = {"age": 35, "gender": "female", "income": 5_000_000}
    assert outside("customer_needs", far_out) == ["income"]

    response = customer.post(
        "/v1/models/customer_needs:predict",
        json={"instances": [*ROWS["customer_needs"], far_out], "parameters": {"strict": True}},
    )

    assert response.status_code == 422, response.text
    assert response.json() == {
        "error": "1 of 3 rows are invalid: row 2, income: "
        + strict_reason("customer_needs", "income")
    }


@pytest.mark.parametrize(
    "body", [b'{"age": 35, "gender": "f", "income": 1}', b"[]", b'{"calls": [[35, "f", 1]]}']
)
def test_predict_wants_the_instances_envelope(customer: TestClient, body: bytes) -> None:
    response = customer.post(
        "/v1/models/customer_needs:predict",
        content=body,
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400
    assert response.json() == {"error": 'a V1 request is {"instances": [...]} or {"inputs": [...]}'}


@pytest.mark.parametrize("name", MODELS)
def test_inputs_is_another_name_for_instances(clients: dict[str, TestClient], name: str) -> None:
    path = f"/v1/models/{name}:predict"
    lists = [[row[f] for f in features(name)] for row in ROWS[name]]
    parameters = {"interval": 0.8, "explain": True}

    answers = [
        clients[name].post(path, json={key: rows})
        for rows in (ROWS[name], lists)
        for key in ("instances", "inputs")
    ]
    with_options = [
        clients[name].post(path, json={key: ROWS[name], "parameters": parameters})
        for key in ("instances", "inputs")
    ]

    assert [a.status_code for a in answers + with_options] == [200] * 6
    assert answers[1].json()["predictions"] == pytest.approx(predicted(name, ROWS[name]), rel=RTOL)
    assert all(a.json() == answers[0].json() for a in answers)
    assert with_options[1].json() == with_options[0].json()
    assert "interval" in with_options[1].json()["predictions"][0]


@pytest.mark.parametrize("name", MODELS)
def test_a_large_inputs_batch_answers_as_an_instances_batch(
    clients: dict[str, TestClient], name: str
) -> None:
    rows = ROWS[name] * 1000  # over the size from which a batch is decoded straight to columns
    path = f"/v1/models/{name}:predict"

    by_inputs = clients[name].post(path, json={"inputs": rows, "parameters": {"interval": 0.9}})
    by_instances = clients[name].post(
        path, json={"instances": rows, "parameters": {"interval": 0.9}}
    )

    assert by_inputs.status_code == by_instances.status_code == 200, by_inputs.text
    assert len(by_inputs.request.content) > 64 * 1024
    assert by_inputs.content == by_instances.content
    values = [p[PREDICTION[name]] for p in by_inputs.json()["predictions"]]
    assert values == pytest.approx(predicted(name, ROWS[name]) * 1000, rel=RTOL)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"instances": ROWS["customer_needs"], "inputs": ROWS["customer_needs"]},
            'a V1 request has "instances" or "inputs", not both',
        ),
        ({"inputs": {"age": [35]}}, '"inputs" must be a list of objects'),
        ({"inputs": [], "signature_name": "x"}, "unexpected top-level keys: signature_name"),
    ],
    ids=["both", "columns", "another key"],
)
def test_a_malformed_inputs_body_is_named(customer: TestClient, body: Any, message: str) -> None:
    response = customer.post("/v1/models/customer_needs:predict", json=body)

    assert response.status_code == 400
    assert response.json() == {"error": message}


@pytest.mark.parametrize("content_type", [FORM, f"{FORM}; charset=utf-8", "application/json"])
def test_curls_default_form_type_is_read_as_json(customer: TestClient, content_type: str) -> None:
    body = b'{"instances": [{"age": 35, "gender": "female", "income": 52000}]}'

    response = customer.post(
        "/v1/models/customer_needs:predict", content=body, headers={"Content-Type": content_type}
    )

    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx(
        predicted("customer_needs", ROWS["customer_needs"][:1]), rel=RTOL
    )


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("prefix", ["", "/{function}"])
def test_list_models_names_the_one_model_served(
    clients: dict[str, TestClient], name: str, prefix: str
) -> None:
    response = clients[name].get(prefix.format(function=TARGETS[name]) + "/v1/models")

    assert response.status_code == 200, response.text
    assert response.json() == {"models": [name]}


def test_faults_are_one_message_naming_row_and_field(customer: TestClient) -> None:
    instances = [[35, "f"], {"age": 35, "gender": "f", "income": 1}]

    response = customer.post("/v1/models/customer_needs:predict", json={"instances": instances})

    assert response.status_code == 422
    assert response.json() == {
        "error": "every instance must be a JSON object: "
        "row 0: must be a JSON object or a list of 3 values (age, gender, income)"
    }


@pytest.mark.parametrize("path", ["/v1/models/market_trend", "/v1/models/market_trend:predict"])
def test_another_models_path_is_not_found(customer: TestClient, path: str) -> None:
    response = customer.get(path)

    assert response.status_code == 404
    assert response.json() == {
        "error": f"no such path: {path}; the model market_trend is served by the function "
        "predict_market_trend, and this function, predict_customer_needs, serves customer_needs"
    }
