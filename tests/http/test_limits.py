"""413: more rows than MAX_INSTANCES (100000 by default), or a body over MAX_BODY_BYTES (10 MiB).

A BigQuery batch over the row limit is a 400 instead (test_bigquery.py): BigQuery would retry
nothing else, and the query must fail with the message.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from shared.settings import Settings
from tests.http.support import RTOL, json_body, predicted

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
    assert {line.rsplit(b",", 1)[1] for line in lines[1:-1]} == {lines[1].rsplit(b",", 1)[1]}
    assert float(lines[1].rsplit(b",", 1)[1]) == pytest.approx(
        predicted("customer_needs", [ROW])[0], rel=RTOL
    )


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


@pytest.mark.parametrize(("size", "status"), [(LIMIT, 200), (LIMIT + 1, 413)])
def test_a_streamed_body_without_content_length_is_cut_at_the_limit(
    customer: FlaskClient, size: int, status: int
) -> None:
    # No Content-Length: the server reads the stream (chunked transfer encoding) up to the limit.
    stream = io.BytesIO(padded({"instances": [ROW]}, size))

    response = customer.post(
        "/",
        input_stream=stream,
        content_type="application/json",
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert response.status_code == status, response.text
    if status == 413:
        too_large(response, BYTES_MESSAGE)
        assert stream.tell() <= LIMIT + 64 * 1024  # it stopped reading soon after the limit
