"""413: more rows than MAX_INSTANCES (100000 by default), or a body over MAX_BODY_BYTES (10 MiB).

A BigQuery batch over the row limit is a 400 instead (test_bigquery.py): BigQuery would retry
nothing else, and the query must fail with the message.
"""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from werkzeug.test import EnvironBuilder, TestResponse, run_wsgi_app

from shared.settings import Settings
from tests.http.support import RTOL, json_body, outside, predicted

TOO_MANY = Settings().max_instances + 1
LIMIT = Settings().max_body_bytes
ROW = {"age": 35, "gender": "female", "income": 52000}


def too_large(response: TestResponse, message: str, *, kserve: bool = False) -> None:
    assert response.status_code == 413, response.text[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert (body["error"] if kserve else body["error"]["message"]) == message
    if not kserve:
        assert body["error"]["code"] == "payload_too_large"


def tensors(rows: int) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "age", "shape": [rows], "datatype": "FP64", "data": [35] * rows},
            {"name": "gender", "shape": [rows], "datatype": "BYTES", "data": ["f"] * rows},
            {"name": "income", "shape": [rows], "datatype": "FP64", "data": [1] * rows},
        ]
    }


ROWS_MESSAGE = "at most 100000 instances are accepted per request"
BYTES_MESSAGE = "request body is larger than 10485760 bytes"


@pytest.mark.parametrize("instance", [ROW, [35, "female", 52000]], ids=["objects", "lists"])
def test_one_instance_more_than_max_instances_is_413(
    customer: FlaskClient, instance: object
) -> None:
    response = customer.post("/", json={"instances": [instance] * TOO_MANY})

    too_large(response, ROWS_MESSAGE)


def test_one_csv_row_more_than_max_instances_is_413(customer: FlaskClient) -> None:
    body = b"age,gender,income\n" + b"35,f,52000\n" * TOO_MANY

    response = customer.post("/", data=body, content_type="text/csv")

    too_large(response, ROWS_MESSAGE)


def test_the_protocols_refuse_one_row_too_many_in_their_own_shape(customer: FlaskClient) -> None:
    v1 = customer.post("/v1/models/customer_needs:predict", json={"instances": [ROW] * TOO_MANY})
    v2 = customer.post("/v2/models/customer_needs/infer", json=tensors(TOO_MANY))

    too_large(v1, ROWS_MESSAGE, kserve=True)
    too_large(v2, ROWS_MESSAGE, kserve=True)


def test_max_instances_rows_are_answered(customer: FlaskClient) -> None:
    body = b"age,gender,income\n" + b"35,female,52000\n" * (TOO_MANY - 1)

    response = customer.post("/", data=body, content_type="text/csv")

    assert response.status_code == 200
    lines = response.data.split(b"\r\n")
    assert len(lines) == TOO_MANY + 1  # the header, every row, and the last line end
    assert lines[0] == b"age,gender,income,purchase_amount,outside_training_range"
    appended = {tuple(line.rsplit(b",", 2)[1:]) for line in lines[1:-1]}  # value, flags
    [(value, flags)] = appended
    assert float(value) == pytest.approx(predicted("customer_needs", [ROW])[0], rel=RTOL)
    assert flags == ";".join(outside("customer_needs", ROW)).encode()


def padded(document: object, size: int) -> bytes:
    """`document` as JSON with trailing spaces up to `size` bytes (still valid JSON)."""
    body = json_body(document)
    return body + b" " * (size - len(body))


@pytest.mark.parametrize(
    ("path", "content_type", "kserve"),
    [
        ("/", "application/json", False),
        ("/", "text/csv", False),
        ("/v1/models/customer_needs:predict", "application/json", True),
        ("/v2/models/customer_needs/infer", "application/json", True),
    ],
)
def test_a_body_one_byte_over_max_body_bytes_is_413(
    customer: FlaskClient, path: str, content_type: str, kserve: bool
) -> None:
    body = padded({"instances": [ROW]}, LIMIT + 1)

    response = customer.post(path, data=body, content_type=content_type)

    too_large(response, BYTES_MESSAGE, kserve=kserve)


def test_a_body_of_exactly_max_body_bytes_is_read(customer: FlaskClient) -> None:
    response = customer.post(
        "/", data=padded({"instances": [ROW]}, LIMIT), content_type="application/json"
    )

    assert response.status_code == 200, response.text
    assert response.get_json()["predictions"] == pytest.approx(
        predicted("customer_needs", [ROW]), rel=RTOL
    )


def test_a_body_that_says_it_is_too_large_is_refused_unread(customer: FlaskClient) -> None:
    stream = io.BytesIO(padded({"instances": [ROW]}, 3 * LIMIT))

    response = customer.post("/", input_stream=stream, content_type="application/json")

    too_large(response, BYTES_MESSAGE)
    assert stream.tell() == 0


def post_chunked(client: FlaskClient, stream: io.BytesIO) -> tuple[int, Any]:
    """POST / with a body of unknown length (chunked transfer encoding): (status, JSON body).

    The test client always declares a Content-Length, so this calls the app directly. How far
    the server read is where `stream` stands after.
    """
    environ = EnvironBuilder(method="POST", path="/", content_type="application/json").get_environ()
    environ.pop("CONTENT_LENGTH", None)
    environ.update({"wsgi.input": stream, "wsgi.input_terminated": True})
    body, status, _ = run_wsgi_app(client.application, environ, buffered=True)
    return int(status.split()[0]), orjson.loads(b"".join(body))


def test_a_body_of_unknown_length_is_read_up_to_the_limit(customer: FlaskClient) -> None:
    stream = io.BytesIO(padded({"instances": [ROW]}, LIMIT))

    status, body = post_chunked(customer, stream)

    assert status == 200, body
    assert body["predictions"] == pytest.approx(predicted("customer_needs", [ROW]), rel=RTOL)


@pytest.mark.parametrize("size", [LIMIT + 1, 3 * LIMIT])
def test_a_body_of_unknown_length_is_cut_one_byte_past_the_limit(
    customer: FlaskClient, size: int
) -> None:
    stream = io.BytesIO(padded({"instances": [ROW]}, size))

    status, body = post_chunked(customer, stream)

    assert status == 413
    assert body["error"]["message"] == BYTES_MESSAGE
    assert stream.tell() == LIMIT + 1
