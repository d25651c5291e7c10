"""BigQuery remote functions: `{"calls": [...]}` batches, NULL rows, and each output; at the
root, known by the body, and at /bigquery, where every answer is in BigQuery's shape.

BigQuery retries 408, 429, 500, 503 and 504 and fails the query on any other status, so a
caller's mistake must be a plain 400 with `errorMessage`: the query stops with our message.
"""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import orjson
import pytest
from starlette.testclient import TestClient

from shared.settings import Settings
from tests.http.support import FAR_OUT, RTOL, bounds, outside, predicted, shapley

CALLS = [[35, "F", 52000], ["61", "male", "90000.5"], [18.0, "Other", 0]]
CANONICAL = [
    {"age": 35, "gender": "female", "income": 52000},
    {"age": 61, "gender": "male", "income": 90000.5},
    {"age": 18, "gender": "other", "income": 0},
]
WITHHELD = "outside the training range: not calibrated there"


def batch(calls: list[Any], context: dict[str, Any] | None = None) -> dict[str, Any]:
    """A request body as BigQuery sends it."""
    return {
        "requestId": "124ab1c",
        "caller": "//bigquery.googleapis.com/projects/demo/jobs/job-1",
        "sessionUser": "analyst@example.com",
        "userDefinedContext": context or {},
        "calls": calls,
    }


def replies(client: TestClient, body: dict[str, Any]) -> list[Any]:
    response = client.post("/", json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"replies"}
    return list(response.json()["replies"])


def refused(response: httpx.Response) -> str:
    """The message of a refusal that fails the query at once."""
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"errorMessage"}
    return str(response.json()["errorMessage"])


def test_a_batch_gets_one_reply_per_call_in_order(customer: TestClient) -> None:
    answer = replies(customer, batch(CALLS))

    assert answer == pytest.approx(predicted("customer_needs", CANONICAL), rel=RTOL)


def test_a_market_batch_gets_the_market_models_replies(market: TestClient) -> None:
    calls = [[9000, 300.5, 13000], ["4000.5", "200", 6000]]
    canonical = [
        dict(zip(("sales", "population", "gdp"), map(float, c), strict=True)) for c in calls
    ]

    answer = replies(market, batch(calls))

    assert answer == pytest.approx(predicted("market_trend", canonical), rel=RTOL)


def test_a_call_with_a_null_argument_gets_a_null_reply(customer: TestClient) -> None:
    calls = [[None, "f", 1000], CALLS[0], [35, None, 1000], CALLS[1], [None, None, None]]

    answer = replies(customer, batch(calls))

    assert [answer[0], answer[2], answer[4]] == [None, None, None]
    assert [answer[1], answer[3]] == pytest.approx(
        predicted("customer_needs", CANONICAL[:2]), rel=RTOL
    )


def test_a_batch_of_null_calls_only_gets_null_replies(customer: TestClient) -> None:
    assert replies(customer, batch([[None, None, None]] * 3)) == [None, None, None]


def test_an_empty_batch_gets_no_replies(customer: TestClient) -> None:
    assert replies(customer, batch([])) == []


@pytest.mark.parametrize("context", [{}, {"output": "prediction"}, {"output": " Prediction "}])
def test_the_default_output_is_the_prediction(
    customer: TestClient, context: dict[str, str]
) -> None:
    answer = replies(customer, batch(CALLS, context))

    assert answer == pytest.approx(predicted("customer_needs", CANONICAL), rel=RTOL)


@pytest.mark.parametrize("output", ["lower", "upper"])
@pytest.mark.parametrize("level", [None, "0.8", 0.95])
def test_lower_and_upper_reply_with_the_bound_at_the_interval_level(
    customer: TestClient, output: str, level: str | float | None
) -> None:
    context = {"output": output} | ({} if level is None else {"interval_level": level})

    answer = replies(customer, batch([*CALLS, [None, "f", 1]], context))

    at = 0 if output == "lower" else 1
    expected = bounds("customer_needs", CANONICAL, 0.9 if level is None else float(level))
    assert expected[2] is None  # CANONICAL[2] lies outside the training range: withheld
    assert answer[:2] == pytest.approx([b[at] for b in expected[:2] if b], rel=RTOL)
    assert answer[2:] == [None, None]  # withheld, and the NULL call


def test_interval_replies_with_objects_holding_the_value_and_its_interval(
    customer: TestClient,
) -> None:
    answer = replies(customer, batch(CALLS, {"output": "interval", "interval_level": "0.8"}))

    expected = zip(
        predicted("customer_needs", CANONICAL),
        bounds("customer_needs", CANONICAL, 0.8),
        strict=True,
    )
    for reply, row, (value, interval) in zip(answer, CANONICAL, expected, strict=True):
        assert list(reply) == ["purchase_amount", "interval", "outside_training_range"]
        assert reply["purchase_amount"] == pytest.approx(value, rel=RTOL)
        assert reply["outside_training_range"] == outside("customer_needs", row)
        assert reply["interval"] == (
            {"level": 0.8, "lower": None, "upper": None, "withheld": WITHHELD}
            if interval is None
            else pytest.approx({"level": 0.8, "lower": interval[0], "upper": interval[1]}, rel=RTOL)
        )


@pytest.mark.parametrize("output", ["explain", "all"])
def test_explain_and_all_reply_with_each_features_contribution(
    customer: TestClient, output: str
) -> None:
    answer = replies(customer, batch([*CALLS, [None, "f", 1]], {"output": output}))

    assert answer[3] is None
    expected = zip(
        predicted("customer_needs", CANONICAL),
        bounds("customer_needs", CANONICAL, 0.9),
        strict=True,
    )
    for reply, row, (value, interval) in zip(answer, CANONICAL, expected, strict=False):
        base, contributions = shapley("customer_needs", row)
        assert reply["purchase_amount"] == pytest.approx(value, rel=RTOL)
        assert reply["outside_training_range"] == outside("customer_needs", row)
        assert reply["base_value"] == pytest.approx(base, rel=RTOL)
        assert reply["contributions"] == pytest.approx(contributions, rel=RTOL, abs=value * RTOL)
        if output == "explain":
            assert "interval" not in reply
        elif interval is None:
            assert reply["interval"] == {
                "level": 0.9,
                "lower": None,
                "upper": None,
                "withheld": WITHHELD,
            }
        else:
            assert reply["interval"] == pytest.approx(
                {"level": 0.9, "lower": interval[0], "upper": interval[1]}, rel=RTOL
            )


def test_all_names_the_features_outside_the_training_range_and_prediction_stays_bare(
    customer: TestClient,
) -> None:
    calls = [CALLS[0], [FAR_OUT["age"], "f", FAR_OUT["income"]]]
    flagged = outside("customer_needs", FAR_OUT)
    assert "income" in flagged

    every = replies(customer, batch(calls, {"output": "all"}))
    bare = replies(customer, batch(calls))

    assert [reply["outside_training_range"] for reply in every] == [[], flagged]
    assert every[1]["interval"]["lower"] is None
    assert bare == pytest.approx(predicted("customer_needs", [CANONICAL[0], FAR_OUT]), rel=RTOL)
    assert all(type(reply) is float for reply in bare)


# --- faults: named by call, as BigQuery numbers them -----------------------------------------


def test_a_bad_row_fails_the_query_naming_the_call_and_field(customer: TestClient) -> None:
    calls = [CALLS[0], [35, "robot", 1000], [300, "f", 1000]]

    message = refused(customer.post("/", json=batch(calls)))

    assert message == (
        "2 of 3 rows are invalid: row 1, gender: must be one of female, male, other (received "
        '"robot"); row 2, age: must be between 18 and 100 (received 300)'
    )


def test_calls_with_null_arguments_are_counted_when_faults_are_numbered(
    customer: TestClient,
) -> None:
    calls = [[None, "f", 1], CALLS[0], [None, None, None], [35, "robot", 1000]]

    message = refused(customer.post("/", json=batch(calls)))

    assert 'row 3, gender: must be one of female, male, other (received "robot")' in message
    assert "row 1" not in message
    assert message.startswith("1 of 4 rows are invalid")  # the NULL calls count too


def test_a_call_with_the_wrong_number_of_arguments_is_named(customer: TestClient) -> None:
    message = refused(customer.post("/", json=batch([CALLS[0], [35, "f"], "x"])))

    assert message == (
        "calls do not match the function's arguments: "
        "row 1: expected 3 arguments (age, gender, income); "
        "row 2: expected 3 arguments (age, gender, income)"
    )


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"output": "everything"}, "userDefinedContext.output"),
        ({"output": "lower", "interval_level": "2"}, "userDefinedContext.interval_level"),
        ({"output": "upper", "interval_level": "high"}, "userDefinedContext.interval_level"),
        ({"output": "interval", "interval_level": None}, "userDefinedContext.interval_level"),
        ({"output": "all", "interval_level": "0.99999"}, "userDefinedContext.interval_level"),
    ],
)
def test_a_bad_user_defined_context_fails_the_query(
    customer: TestClient, context: dict[str, Any], field: str
) -> None:
    message = refused(customer.post("/", json=batch(CALLS, context)))

    assert f"{field}: " in message


def test_calls_that_are_not_a_list_fail_the_query(customer: TestClient) -> None:
    message = refused(customer.post("/", json={"calls": {"0": CALLS[0]}}))

    assert message == '"calls" must be a list of argument lists'


def test_a_batch_over_max_instances_fails_the_query_saying_its_size_and_asking_for_less(
    customer: TestClient,
) -> None:
    message = refused(customer.post("/", json=batch([CALLS[0]] * 100_001)))

    assert message == (
        "at most 100000 calls are accepted per request; this batch has 100001; "
        "lower max_batching_rows in CREATE FUNCTION"
    )


def test_a_batch_of_max_instances_is_answered(market: TestClient) -> None:
    answer = replies(market, batch([[9000, 300, 13000]] * 100_000))

    assert len(answer) == 100_000
    assert set(answer) == {answer[0]}
    assert answer[0] == pytest.approx(
        predicted("market_trend", [{"sales": 9000, "population": 300, "gdp": 13000}])[0], rel=RTOL
    )


@pytest.mark.parametrize("path", ["/", "/bigquery"])
def test_null_calls_before_between_and_after_faults_are_counted_and_numbered_as_calls(
    customer: TestClient, path: str
) -> None:
    null, robot, too_old = [None, "f", 1], [35, "robot", 1000], [300, "f", 1000]
    calls = [null, null, robot, null, CALLS[0], too_old, null]

    message = refused(customer.post(path, json=batch(calls)))

    assert message == (
        "2 of 7 rows are invalid: row 2, gender: must be one of female, male, other (received "
        '"robot"); row 5, age: must be between 18 and 100 (received 300)'
    )


# --- the /bigquery path: BigQuery's shape from routing on ------------------------------------


@pytest.mark.parametrize("path", ["/bigquery", "/predict_customer_needs/bigquery/"])
def test_the_bigquery_path_answers_a_batch_as_the_root_does(
    customer: TestClient, path: str
) -> None:
    body = batch([*CALLS, [None, "f", 1]], {"output": "interval"})

    assert replies(customer, body) == replies_at(customer, path, body)


def replies_at(client: TestClient, path: str, body: dict[str, Any]) -> list[Any]:
    response = client.post(path, json=body)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"replies"}
    return list(response.json()["replies"])


JSON = "application/json"
LIMIT = Settings().max_body_bytes


@pytest.mark.parametrize(
    ("content", "content_type", "message"),
    [
        pytest.param(b"{oops", JSON, "body is not valid JSON: ", id="not JSON"),
        pytest.param(
            b"age\n35\n", "text/csv", "Content-Type text/csv is not supported here", id="CSV"
        ),
        pytest.param(
            orjson.dumps({"instances": [CANONICAL[0]]}), JSON, '{"calls": [[...], ...]}',
            id="instances",
        ),
        pytest.param(
            orjson.dumps({"calls": [CALLS[0]], "instances": []}), JSON, 'without "instances"',
            id="calls and instances",
        ),
        pytest.param(orjson.dumps([CALLS[0]]), JSON, '{"calls": [[...], ...]}', id="a list"),
        pytest.param(
            orjson.dumps(batch(CALLS)) + b" " * LIMIT, JSON,
            f"request body is larger than {LIMIT} bytes; "
            "lower max_batching_rows in CREATE FUNCTION",
            id="too large",
        ),
    ],
)  # fmt: skip
def test_every_refusal_on_the_bigquery_path_fails_the_query_in_its_shape(
    customer: TestClient, content: bytes, content_type: str, message: str
) -> None:
    response = customer.post("/bigquery", content=content, headers={"Content-Type": content_type})

    assert message in refused(response)


def test_a_batch_too_large_for_the_root_is_refused_there_in_the_native_shape(
    customer: TestClient,
) -> None:
    body = orjson.dumps(batch(CALLS)) + b" " * LIMIT

    response = customer.post("/", content=body, headers={"Content-Type": JSON})

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_a_method_but_post_on_the_bigquery_path_is_405_in_its_shape(
    customer: TestClient, method: str
) -> None:
    response = customer.request(method, "/bigquery")

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert response.json() == {"errorMessage": f"{method} is not allowed here"}
