"""BigQuery remote functions at /bigquery against real functions-framework servers.

There every answer is BigQuery's: `{"replies": [...]}`, or `{"errorMessage": "..."}` with 400
for any mistake of the caller (the query fails at once), 503 with Retry-After when the model
store is out (BigQuery retries it), and 405 for a method BigQuery never uses. At the root a
batch is known only by its body, so an error found before the body is parsed is in the native
shape there.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import requests

from tests.integration.conftest import TARGETS, StartFunction, launcher, new_bucket, publish_all
from tests.integration.support import FakeGcs, FunctionServer

LIMIT = 64 * 1024
JSON = {"Content-Type": "application/json"}
GOOD = [[35, "F", 52000], ["61", "male", "90000.5"]]
NULL, ROBOT, TOO_OLD = [None, "f", 1], [35, "robot", 1000], [300, "f", 1000]
TOO_LARGE = f"request body is larger than {LIMIT} bytes; lower max_batching_rows in CREATE FUNCTION"


def batch(calls: list[list[Any]], context: dict[str, str] | None = None) -> dict[str, Any]:
    """A request body as BigQuery sends it."""
    return {
        "requestId": "124ab1c",
        "caller": "//bigquery.googleapis.com/projects/demo/jobs/job-1",
        "sessionUser": "analyst@example.com",
        "userDefinedContext": context or {},
        "calls": calls,
    }


@pytest.fixture(scope="module")
def customer(gcs: FakeGcs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    store = publish_all(gcs, new_bucket(gcs))
    with launcher(gcs, tmp_path_factory.mktemp("servers")) as start:
        yield start(TARGETS["customer_needs"], MODEL_STORE=store, MAX_BODY_BYTES=str(LIMIT))


def bigquery_error(response: requests.Response, status: int = 400) -> str:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert set(response.json()) == {"errorMessage"}
    return str(response.json()["errorMessage"])


@pytest.mark.parametrize("path", ["/bigquery", "/predict_customer_needs/bigquery"])
def test_the_bigquery_endpoint_replies_as_the_root_does(customer: FunctionServer, path: str):
    body = batch([GOOD[0], NULL, GOOD[1]], {"output": "interval", "interval_level": "0.8"})

    at_root = requests.post(customer.url, json=body, timeout=30)
    there = requests.post(customer.url + path, json=body, timeout=30)

    assert there.status_code == at_root.status_code == 200, there.text
    assert there.json() == at_root.json()
    assert there.json()["replies"][1] is None
    assert there.headers["X-Model-Version"] == at_root.headers["X-Model-Version"]


def test_every_mistake_there_fails_the_query_with_a_bigquery_message(customer: FunctionServer):
    oversized = b'{"calls": []}' + b" " * LIMIT

    def post(body: Any, content_type: str = "application/json") -> requests.Response:
        data = body if isinstance(body, bytes | Iterator) else orjson.dumps(body)
        headers = {"Content-Type": content_type}
        return requests.post(customer.url + "/bigquery", data=data, headers=headers, timeout=30)

    answers = {
        "declared too large": post(oversized),
        "chunked too large": post(iter([oversized])),
        "not JSON": post(b"{oops"),
        "CSV": post(b"age\n35\n", "text/csv"),
        "not a batch": post({"instances": [GOOD[0]]}),
        "calls not a list": post({"calls": {"0": GOOD[0]}}),
        "a bad row": post(batch([GOOD[0], ROBOT])),
    }

    messages = {what: bigquery_error(response) for what, response in answers.items()}
    assert messages["declared too large"] == messages["chunked too large"] == TOO_LARGE
    assert answers["declared too large"].headers["Connection"] == "close"
    assert messages["not JSON"].startswith("body is not valid JSON: ")
    assert messages["CSV"] == ("Content-Type text/csv is not supported here; use application/json")
    assert messages["not a batch"].startswith('a BigQuery remote-function request is {"calls"')
    assert messages["calls not a list"] == '"calls" must be a list of argument lists'
    assert messages["a bad row"] == (
        "1 of 2 rows are invalid: row 1, gender: must be one of female, male, other (received "
        '"robot")'
    )


def test_a_method_but_post_there_is_405_in_bigquerys_shape(customer: FunctionServer):
    response = requests.get(customer.url + "/bigquery", timeout=30)

    assert bigquery_error(response, 405) == "GET is not allowed here"
    assert response.headers["Allow"] == "POST, OPTIONS"


def test_at_the_root_an_error_before_the_body_is_parsed_is_in_the_native_shape(
    customer: FunctionServer,
):
    oversized = b'{"calls": []}' + b" " * LIMIT

    response = requests.post(customer.url, data=oversized, headers=JSON, timeout=30)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("path", ["", "/bigquery"])
def test_null_calls_before_between_and_after_faults_count_and_number_as_calls(
    customer: FunctionServer, path: str
):
    calls = [NULL, NULL, ROBOT, NULL, GOOD[0], TOO_OLD, NULL]

    response = requests.post(customer.url + path, json=batch(calls), timeout=30)

    assert bigquery_error(response) == (
        "2 of 7 rows are invalid: row 2, gender: must be one of female, male, other (received "
        '"robot"); row 5, age: must be between 18 and 100 (received 300)'
    )


def test_a_model_store_outage_there_is_503_which_bigquery_retries(
    bucket: str, start_function: StartFunction
):
    server = start_function(TARGETS["customer_needs"], MODEL_STORE=f"gs://{bucket}/nothing")

    response = requests.post(server.url + "/bigquery", json=batch(GOOD), timeout=30)

    assert bigquery_error(response, 503) == "no model is published as customer_needs"
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize(
    ("context", "field"),
    [
        ({"output": "lower", "interval_level": "1.5"}, "userDefinedContext.interval_level"),
        ({"output": "interval", "interval_level": "0.99999"}, "userDefinedContext.interval_level"),
        ({"output": "all", "interval_level": "x"}, "userDefinedContext.interval_level"),
        ({"strict": "maybe"}, "userDefinedContext.strict"),
    ],
)
def test_a_bad_context_is_named_by_the_key_set_in_create_function(
    customer: FunctionServer, context: dict[str, str], field: str
):
    response = requests.post(customer.url + "/bigquery", json=batch(GOOD, context), timeout=30)

    message = bigquery_error(response)
    assert f"{field}: " in message
    assert "parameters." not in message
