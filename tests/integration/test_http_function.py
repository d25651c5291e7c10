"""Both HTTP functions driven over real HTTP: every format and every error status.

Expected answers come from the bundled model itself (its pipeline, and its metadata read by the
definitions in tests/expected.py), never from the code that serves it.
"""

from __future__ import annotations

import csv
import io

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
)
from tests.integration.support import FunctionServer

CUSTOMERS = [
    {"age": 35, "gender": "F", "income": "52000"},
    {"age": "61", "gender": "male", "income": 90000.5},
    {"age": 18, "gender": "Other", "income": 0},
]
MARKETS = [
    {"sales": 9000, "population": 300.5, "gdp": 13000},
    {"sales": "4000.5", "population": "200", "gdp": 6000},
]
CANONICAL = {"F": "female", "female": "female", "male": "male", "Other": "other"}
# Valid for the schema (age 18-100, income 0-10,000,000), far beyond what the model was fit on.
FAR_OUT = {"age": 95, "gender": "female", "income": 5_000_000}
WITHHELD = "outside the training range: not calibrated there"


def canonical(name: str, rows: list[dict[str, object]]) -> pd.DataFrame:
    """`rows` as the model reads them: numbers as floats, categories by their names."""
    model = load_current(BUNDLED, name)
    frame = pd.DataFrame(rows)
    for column in model.schema.feature_names:
        if column == "gender":
            frame[column] = frame[column].map(CANONICAL)
        else:
            frame[column] = frame[column].astype(float)
    return frame[list(model.schema.feature_names)]


def expected(name: str, rows: list[dict[str, object]]) -> list[float]:
    """The bundled model's own in-process predictions for `rows`, raised to the target's
    minimum."""
    model = load_current(BUNDLED, name)
    values = model.pipeline.predict(canonical(name, rows))
    return [reference.in_domain(model.metadata, float(v)) for v in values]


def expected_intervals(
    name: str, rows: list[dict[str, object]], level: float
) -> list[tuple[float, float] | None]:
    """Each row's bounds by the normalised split-conformal definition; None where withheld."""
    metadata = load_current(BUNDLED, name).metadata
    records = canonical(name, rows).to_dict("records")
    return reference.intervals(metadata, records, expected(name, rows), level)


@pytest.fixture
def customer(running: dict[str, FunctionServer]) -> FunctionServer:
    return running["customer_needs"]


@pytest.fixture
def market(running: dict[str, FunctionServer]) -> FunctionServer:
    return running["market_trend"]


def test_json_instances_get_predictions_aligned_with_model_version(customer, market):
    for server, name, rows in (
        (customer, "customer_needs", CUSTOMERS),
        (market, "market_trend", MARKETS),
    ):
        response = requests.post(server.url, json={"instances": rows, "parameters": {}}, timeout=30)

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["predictions"] == pytest.approx(expected(name, rows), rel=1e-12)
        assert body["model"] == {"name": name, "version": bundled_version(name)}
        assert response.headers["X-Model-Name"] == name
        assert response.headers["X-Model-Version"] == bundled_version(name)


def test_bare_object_is_one_instance(customer):
    response = requests.post(customer.url, json=CUSTOMERS[0], timeout=30)

    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx(
        expected("customer_needs", CUSTOMERS[:1])
    )


def test_function_also_answers_under_its_own_name(customer):
    response = requests.post(
        f"{customer.url}/predict_customer_needs", json=CUSTOMERS[0], timeout=30
    )

    assert response.status_code == 200, response.text


def test_csv_in_any_column_order_comes_back_with_prediction_and_extras_untouched(customer):
    body = 'customer_id,income,note,gender,age\r\nA-1,52000,"hello, ""world""\nline two",F,35\r\n'
    body += "B-2,90000.5,=1+1,male,61\r\n"

    response = requests.post(
        customer.url, data=body.encode(), headers={"Content-Type": "text/csv"}, timeout=30
    )

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == [
        "customer_id",
        "income",
        "note",
        "gender",
        "age",
        "purchase_amount",
        "outside_training_range",
    ]
    assert [row["customer_id"] for row in rows] == ["A-1", "B-2"]
    assert rows[0]["note"] == 'hello, "world"\nline two'
    assert rows[1]["note"] == "=1+1"
    assert rows[1]["income"] == "90000.5"
    predicted = [float(row["purchase_amount"]) for row in rows]
    assert predicted == pytest.approx(expected("customer_needs", CUSTOMERS[:2]), rel=1e-12)
    assert [row["outside_training_range"] for row in rows] == ["", ""]


def test_get_returns_the_model_card(market):
    response = requests.get(market.url, timeout=30)

    assert response.status_code == 200, response.text
    card = response.json()
    assert card["name"] == "market_trend"
    assert card["version"] == bundled_version("market_trend")
    assert [f["name"] for f in card["features"]] == ["sales", "population", "gdp"]
    assert card["target"]["name"] == "future_sales"
    assert set(card["metrics"]["held_out"]["chosen"]) == {"r2", "mae", "rmse"}
    assert card["instance_schema"]["required"] == ["sales", "population", "gdp"]
    example = requests.post(market.url, json=card["example_request"], timeout=30)
    assert example.status_code == 200, example.text


def test_card_lists_category_aliases(customer):
    card = requests.get(customer.url, timeout=30).json()

    gender = next(f for f in card["features"] if f["name"] == "gender")
    assert gender["categories"] == ["female", "male", "other"]
    assert "m" in gender["aliases"]["male"]


def test_invalid_rows_get_422_naming_every_row_and_field(customer):
    rows = [
        CUSTOMERS[0],
        {"age": "NaN", "gender": "M", "income": 1},
        {"age": True, "gender": "robot", "income": -5, "email": "a@b.c"},
        {"gender": "f", "income": {"a": 1}},
    ]

    response = requests.post(customer.url, json={"instances": rows}, timeout=30)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    faults = {(d["row"], d["field"]): d["reason"] for d in error["details"]}
    assert faults == {
        (1, "age"): "must be a finite number",
        (2, "email"): "unknown field",
        (2, "age"): "must be a number",
        (2, "gender"): "must be one of female, male, other",
        (2, "income"): "must be between 0 and 1e+07",
        (3, "age"): "missing",
        (3, "income"): "must be a number",
    }


def test_invalid_csv_rows_get_422_too_naming_the_line_as_well(customer):
    body = b"age,gender,income\n35,f,100\n300,f,100\n"

    response = requests.post(
        customer.url, data=body, headers={"Content-Type": "text/csv"}, timeout=30
    )

    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {
            "row": 1,
            "field": "age",
            "reason": "must be between 18 and 100",
            "received": 300,
            "line": 3,
        }
    ]


def test_interval_and_contributions_for_both_models(customer, market):
    for server, name, rows in (
        (customer, "customer_needs", CUSTOMERS),
        (market, "market_trend", MARKETS),
    ):
        model = load_current(BUNDLED, name)
        intervals = expected_intervals(name, rows, 0.9)

        response = requests.post(
            server.url,
            json={"instances": rows, "parameters": {"interval": 0.9, "explain": True}},
            timeout=30,
        )

        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        target = model.schema.target
        assert [p[target] for p in predictions] == pytest.approx(expected(name, rows), rel=1e-12)
        for prediction, interval in zip(predictions, intervals, strict=True):
            if interval is None:  # the row lies outside the training range
                assert prediction["interval"]["lower"] is prediction["interval"]["upper"] is None
            else:
                assert prediction["interval"] == pytest.approx(
                    {"level": 0.9, "lower": interval[0], "upper": interval[1]}, rel=1e-9
                )
            assert set(prediction["contributions"]) == set(model.schema.feature_names)
            total = prediction["base_value"] + sum(prediction["contributions"].values())
            assert total == pytest.approx(prediction[target], rel=1e-9)


def test_a_row_far_outside_the_training_range_is_flagged_and_its_interval_withheld(customer):
    metadata = load_current(BUNDLED, "customer_needs").metadata
    rows = [CUSTOMERS[0], FAR_OUT]
    flagged = reference.outside(metadata, FAR_OUT)
    assert flagged == ["age", "income"], "age 95 and an income of 5,000,000 were never seen"
    [inside, beyond] = expected_intervals("customer_needs", rows, 0.9)
    assert inside is not None
    assert beyond is None

    bare = requests.post(customer.url, json={"instances": rows}, timeout=30)
    with_interval = requests.post(
        customer.url, json={"instances": rows, "parameters": {"interval": 0.9}}, timeout=30
    )

    assert bare.status_code == 200, bare.text
    assert bare.json()["predictions"] == pytest.approx(expected("customer_needs", rows), rel=1e-9)
    assert bare.json()["outside_training_range"] == [[], flagged]
    assert with_interval.status_code == 200, with_interval.text
    first, second = with_interval.json()["predictions"]
    assert first["outside_training_range"] == []
    assert first["interval"] == pytest.approx(
        {"level": 0.9, "lower": inside[0], "upper": inside[1]}, rel=1e-9
    )
    assert second["outside_training_range"] == flagged
    assert second["purchase_amount"] == pytest.approx(bare.json()["predictions"][1], rel=1e-12)
    assert second["interval"] == {"level": 0.9, "lower": None, "upper": None, "withheld": WITHHELD}


def test_strict_refuses_a_row_outside_the_training_range_naming_each_feature(customer):
    metadata = load_current(BUNDLED, "customer_needs").metadata
    rows = [CUSTOMERS[0], FAR_OUT]

    refused = requests.post(
        customer.url, json={"instances": rows, "parameters": {"strict": True}}, timeout=30
    )
    inside_only = requests.post(
        customer.url, json={"instances": rows[:1], "parameters": {"strict": True}}, timeout=30
    )

    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"] == "1 of 2 rows are invalid"
    assert error["details"] == [
        {
            "row": 1,
            "field": name,
            "reason": reference.strict_reason(metadata, name),
        }
        for name in ("age", "income")
    ]
    assert inside_only.status_code == 200, inside_only.text
    assert inside_only.json()["predictions"] == pytest.approx(
        expected("customer_needs", rows[:1]), rel=1e-9
    )


def test_csv_options_come_from_the_query_string(customer):
    body = b"id,age,gender,income\n7,35,F,52000\n"

    response = requests.post(
        customer.url + "?interval=0.8&explain=true",
        data=body,
        headers={"Content-Type": "text/csv"},
        timeout=30,
    )

    assert response.status_code == 200, response.text
    row = next(csv.DictReader(io.StringIO(response.text)))
    assert list(row)[:5] == ["id", "age", "gender", "income", "purchase_amount"]
    assert float(row["purchase_amount_lower"]) < float(row["purchase_amount"])
    assert float(row["purchase_amount_upper"]) > float(row["purchase_amount"])
    contributions = sum(float(row[f"contribution_{f}"]) for f in ("age", "gender", "income"))
    assert float(row["base_value"]) + contributions == pytest.approx(
        float(row["purchase_amount"]), rel=1e-9
    )


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"interval": 0.99999}, "parameters.interval"),
        ({"interval": 1.5}, "parameters.interval"),
        ({"interval": True}, "parameters.interval"),
        ({"explain": "yes"}, "parameters.explain"),
        ({"colour": "red"}, "parameters.colour"),
    ],
)
def test_bad_options_are_422(customer, parameters, field):
    response = requests.post(
        customer.url, json={"instances": CUSTOMERS, "parameters": parameters}, timeout=30
    )

    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


def test_options_need_what_the_model_was_published_with(
    gcs, bucket: str, start_function: StartFunction
):
    pointer = orjson.loads(BUNDLED.read("customer_needs/current.json"))
    metadata = orjson.loads(BUNDLED.read(f"customer_needs/{pointer['version']}/metadata.json"))
    artifact = BUNDLED.read(f"customer_needs/{pointer['version']}/model.joblib")
    bare = {k: v for k, v in metadata.items() if k not in {"intervals", "explanations"}}
    publish(gcs_backend(gcs, bucket), "customer_needs", pointer["version"], artifact, bare)
    server = start_function(TARGETS["customer_needs"], MODEL_STORE=f"gs://{bucket}/models")

    response = requests.post(
        server.url,
        json={"instances": CUSTOMERS, "parameters": {"interval": 0.9, "explain": True}},
        timeout=30,
    )

    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert {d["field"] for d in details} == {"parameters.interval", "parameters.explain"}
    assert all(d["reason"] == "not available for this model" for d in details)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"instances": [', "application/json", 400, "bad_request"),
        (b'{"age": NaN, "gender": "f", "income": 1}', "application/json", 400, "bad_request"),
        (b"[1, 2]", "application/json", 400, "bad_request"),
        (b"age,gender\n1,2,3\n", "text/csv", 400, "bad_request"),
        (b'age,gender,income\n"35"x,f,1\n', "text/csv", 400, "bad_request"),
        (b"\xff\xfeage", "text/csv", 400, "bad_request"),
        (b"age=35", "text/plain", 415, "unsupported_media_type"),
        (b"<a/>", "application/xml", 415, "unsupported_media_type"),
    ],
)
def test_malformed_bodies_and_wrong_types(customer, body, content_type, status, code):
    response = requests.post(
        customer.url, data=body, headers={"Content-Type": content_type}, timeout=30
    )

    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] == code


def test_unknown_path_is_404_and_wrong_method_405_with_allow(customer):
    for path in ("/nope", "/predict_market_trend"):
        response = requests.get(customer.url + path, timeout=30)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    # functions-framework answers this one itself, before the function is called.
    assert requests.get(customer.url + "/favicon.ico", timeout=30).status_code == 404
    for method in ("PUT", "DELETE", "PATCH"):
        response = requests.request(method, customer.url, json={}, timeout=30)
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
        assert response.json()["error"]["code"] == "method_not_allowed"


def test_limits_answer_413_before_parsing(published: str, start_function: StartFunction):
    server = start_function(
        TARGETS["customer_needs"], MODEL_STORE=published, MAX_BODY_BYTES="2000", MAX_INSTANCES="3"
    )
    four = {"instances": CUSTOMERS + CUSTOMERS[:1]}
    four_csv = b"age,gender,income\n" + b"30,f,1\n" * 4
    oversized = b'{"instances": [' + b" " * 5000 + b"]}"

    def chunked():
        yield oversized[:1000]
        yield oversized[1000:]

    responses = [
        requests.post(server.url, json=four, timeout=30),
        requests.post(server.url, data=four_csv, headers={"Content-Type": "text/csv"}, timeout=30),
        requests.post(
            server.url, data=oversized, headers={"Content-Type": "application/json"}, timeout=30
        ),
        requests.post(
            server.url, data=chunked(), headers={"Content-Type": "application/json"}, timeout=30
        ),
    ]

    assert [r.status_code for r in responses] == [413, 413, 413, 413]
    assert all(r.json()["error"]["code"] == "payload_too_large" for r in responses)
    within = requests.post(server.url, json={"instances": CUSTOMERS}, timeout=30)
    assert within.status_code == 200


def test_missing_model_is_503_with_retry_after(bucket: str, start_function: StartFunction):
    server = start_function(TARGETS["market_trend"], MODEL_STORE=f"gs://{bucket}/empty")

    response = requests.post(server.url, json=MARKETS[0], timeout=30)

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "model_unavailable"
    assert response.json()["error"]["message"] == "no model is published as market_trend"


def test_errors_never_echo_secrets_or_traces(customer):
    secret = "Bearer s3cr3t-token-value"
    headers = {
        "Authorization": secret,
        "Content-Type": "application/json",
        "X-Api-Key": "k3y-v4lue",
    }

    responses = [
        requests.post(customer.url, data=b"{oops", headers=headers, timeout=30),
        requests.post(customer.url + "/x", data=b"{}", headers=headers, timeout=30),
        requests.put(customer.url, data=b"{}", headers=headers, timeout=30),
    ]

    for response in responses:
        assert "s3cr3t" not in response.text
        assert "k3y-v4lue" not in response.text
        assert "Traceback" not in response.text
        assert "s3cr3t" not in str(response.headers)
    log = "\n".join(customer.log_lines())
    assert "s3cr3t" not in log
    assert "k3y-v4lue" not in log
