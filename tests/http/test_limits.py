"""413: more rows than MAX_INSTANCES (100000 by default), or a body over MAX_BODY_BYTES (10 MiB).

A BigQuery batch over the row limit is a 400 instead (test_bigquery.py): BigQuery would retry
nothing else, and the query must fail with the message.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from starlette.testclient import TestClient

from shared.settings import Settings
from tests.http.support import RTOL, json_body, outside, predicted

TOO_MANY = Settings().max_instances + 1
LIMIT = Settings().max_body_bytes
CHUNK = 64 * 1024  # what a server hands the app at a time
ROW = {"age": 35, "gender": "female", "income": 52000}


def too_large(response: httpx.Response, message: str, *, kserve: bool = False) -> None:
    assert response.status_code == 413, response.text[:500]
    assert response.headers["content-type"].partition(";")[0] == "application/json"
    body = response.json()
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
    customer: TestClient, instance: object
) -> None:
    response = customer.post("/", json={"instances": [instance] * TOO_MANY})

    too_large(response, ROWS_MESSAGE)


def test_one_csv_row_more_than_max_instances_is_413(customer: TestClient) -> None:
    body = b"age,gender,income\n" + b"35,f,52000\n" * TOO_MANY

    response = customer.post("/", content=body, headers={"Content-Type": "text/csv"})

    too_large(response, ROWS_MESSAGE)


def test_the_protocols_refuse_one_row_too_many_in_their_own_shape(customer: TestClient) -> None:
    v1 = customer.post("/v1/models/customer_needs:predict", json={"instances": [ROW] * TOO_MANY})
    v2 = customer.post("/v2/models/customer_needs/infer", json=tensors(TOO_MANY))

    too_large(v1, ROWS_MESSAGE, kserve=True)
    too_large(v2, ROWS_MESSAGE, kserve=True)


def test_max_instances_rows_are_answered(customer: TestClient) -> None:
    body = b"age,gender,income\n" + b"35,female,52000\n" * (TOO_MANY - 1)

    response = customer.post("/", content=body, headers={"Content-Type": "text/csv"})

    assert response.status_code == 200
    lines = response.content.split(b"\r\n")
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
    customer: TestClient, path: str, content_type: str, kserve: bool
) -> None:
    body = padded({"instances": [ROW]}, LIMIT + 1)

    response = customer.post(path, content=body, headers={"Content-Type": content_type})

    too_large(response, BYTES_MESSAGE, kserve=kserve)


def test_a_body_of_exactly_max_body_bytes_is_read(customer: TestClient) -> None:
    response = customer.post(
        "/",
        content=padded({"instances": [ROW]}, LIMIT),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx(
        predicted("customer_needs", [ROW]), rel=RTOL
    )


def post_streamed(
    client: TestClient, body: bytes, *, declared: bool = False, gone_after: int | None = None
) -> tuple[int, Any, int]:
    """POST / straight to the ASGI app, the body arriving in CHUNK-byte pieces, with a
    Content-Length only when `declared` (else as a chunked body of unknown length would), the
    client going away after `gone_after` pieces if given: (status, JSON body, how many bytes
    the app took from the stream)."""
    pieces = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    taken = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal taken
        if gone_after is not None and taken >= gone_after * CHUNK:
            return {"type": "http.disconnect"}
        piece = pieces.pop(0) if pieces else b""
        taken += len(piece)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    headers = [(b"content-type", b"application/json")]
    if declared:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(client.app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, orjson.loads(answer), taken


def test_a_body_that_says_it_is_too_large_is_refused_unread(customer: TestClient) -> None:
    status, body, taken = post_streamed(
        customer, padded({"instances": [ROW]}, 3 * LIMIT), declared=True
    )

    assert (status, body["error"]["message"]) == (413, BYTES_MESSAGE)
    assert taken == 0


def test_a_body_of_unknown_length_is_read_up_to_the_limit(customer: TestClient) -> None:
    status, body, taken = post_streamed(customer, padded({"instances": [ROW]}, LIMIT))

    assert status == 200, body
    assert body["predictions"] == pytest.approx(predicted("customer_needs", [ROW]), rel=RTOL)
    assert taken == LIMIT


@pytest.mark.parametrize("size", [LIMIT + 1, 3 * LIMIT])
def test_a_body_of_unknown_length_is_cut_in_the_piece_that_passes_the_limit(
    customer: TestClient, size: int
) -> None:
    status, body, taken = post_streamed(customer, padded({"instances": [ROW]}, size))

    assert (status, body["error"]["message"]) == (413, BYTES_MESSAGE)
    assert LIMIT < taken <= LIMIT + CHUNK


def test_a_client_that_goes_away_mid_body_is_logged_as_its_own_mistake(
    customer: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    status, body, taken = post_streamed(
        customer, padded({"instances": [ROW]}, 4 * CHUNK), gone_after=2
    )

    assert (status, taken) == (400, 2 * CHUNK)
    assert body["error"]["message"] == (
        "the client closed the connection before sending the whole body"
    )
    logged = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(entry["severity"], entry["error"]) for entry in logged] == [("WARNING", "bad_request")]
