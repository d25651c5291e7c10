"""413: more rows than MAX_INSTANCES (100000 by default), or a body over MAX_BODY_BYTES (10 MiB).

A BigQuery batch over the row limit is a 400 instead (test_bigquery.py): BigQuery would retry
nothing else, and the query must fail with the message.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import orjson
import pytest
from starlette.testclient import TestClient

from functions.http import DRAIN_BYTES
from shared.settings import Settings
from shared.uploads import parse_event
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


# Where a batch too large for one request goes, from the function's own URL and KServe's.
LARGER = (
    "score larger batches as a CSV file uploaded to incoming/customer_needs/ in the data bucket, "
    "or from BigQuery"
)
ROWS_MESSAGE = f"at most 100000 instances are accepted per request; this one has 100001; {LARGER}"
# A CSV reader stops at the limit: the rows after it are never counted.
CSV_ROWS_MESSAGE = f"at most 100000 instances are accepted per request; {LARGER}"
BYTES_MESSAGE = f"request body is larger than 10485760 bytes; {LARGER}"


@pytest.mark.parametrize("instance", [ROW, [35, "female", 52000]], ids=["objects", "lists"])
def test_one_instance_more_than_max_instances_is_413(
    customer: TestClient, instance: object
) -> None:
    response = customer.post("/", json={"instances": [instance] * TOO_MANY})

    too_large(response, ROWS_MESSAGE)
    assert "connection" not in response.headers  # the body was read whole


def test_one_csv_row_more_than_max_instances_is_413(customer: TestClient) -> None:
    body = b"age,gender,income\n" + b"35,f,52000\n" * TOO_MANY

    response = customer.post("/", content=body, headers={"Content-Type": "text/csv"})

    too_large(response, CSV_ROWS_MESSAGE)


def test_the_protocols_refuse_one_row_too_many_in_their_own_shape(customer: TestClient) -> None:
    v1 = customer.post("/v1/models/customer_needs:predict", json={"instances": [ROW] * TOO_MANY})
    v2 = customer.post("/v2/models/customer_needs/infer", json=tensors(TOO_MANY))

    too_large(v1, ROWS_MESSAGE, kserve=True)
    too_large(v2, ROWS_MESSAGE, kserve=True)


@pytest.mark.parametrize("count", [100_001, 123_457])
def test_a_json_batch_over_the_limit_is_told_its_size_and_where_larger_ones_go(
    clients: dict[str, TestClient], count: int
) -> None:
    rows = {"customer_needs": ROW, "market_trend": {"sales": 9000, "population": 300, "gdp": 1}}

    answers = {
        name: clients[name].post("/", json={"instances": [row] * count})
        for name, row in rows.items()
    }

    for name, response in answers.items():
        too_large(
            response,
            f"at most 100000 instances are accepted per request; this one has {count}; score "
            f"larger batches as a CSV file uploaded to incoming/{name}/ in the data bucket, or "
            "from BigQuery",
        )


def test_a_tensor_batch_over_the_limit_is_told_its_size(customer: TestClient) -> None:
    response = customer.post("/v2/models/customer_needs/infer", json=tensors(123_457))

    assert response.status_code == 413
    assert (
        "; this one has 123457; score larger batches as a CSV file uploaded to incoming/"
        in (response.json()["error"])
    )


def test_the_upload_folder_named_is_the_one_uploads_are_scored_from() -> None:
    event = {"bucket": "data", "name": "incoming/customer_needs/batch.csv", "generation": "1"}
    upload = parse_event({"id": "1", "type": "google.cloud.storage.object.v1.finalized"}, event)

    assert getattr(upload, "model", None) == "customer_needs"
    assert f"to {event['name'].rpartition('/')[0]}/ in" in LARGER


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
    assert response.headers["connection"] == "close"  # the rest may still be on its way


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


@dataclass(frozen=True)
class Streamed:
    """What the app answered, and how many bytes of the body it took from the stream."""

    status: int
    headers: dict[str, str]
    body: Any
    taken: int


def post_streamed(
    client: TestClient,
    body: bytes,
    *,
    declared: bool = False,
    gone_after: int | None = None,
    headers: dict[str, str] | None = None,
) -> Streamed:
    """POST / straight to the ASGI app, the body arriving in CHUNK-byte pieces, with a
    Content-Length only when `declared` (else as a chunked body of unknown length would), the
    client going away after `gone_after` pieces if given, and any other `headers`."""
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

    sent_headers = {"content-type": "application/json", **(headers or {})}
    if declared:
        sent_headers["content-length"] = str(len(body))
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
        "headers": [(name.encode(), value.encode()) for name, value in sent_headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(client.app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    answer = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answered = {name.decode(): value.decode() for name, value in start["headers"]}
    return Streamed(start["status"], answered, orjson.loads(answer), taken)


def refused_for_its_size(streamed: Streamed) -> None:
    assert (streamed.status, streamed.body["error"]["message"]) == (413, BYTES_MESSAGE)
    assert streamed.headers["connection"] == "close"


@pytest.mark.parametrize("declared", [True, False], ids=["declared", "chunked"])
@pytest.mark.parametrize("size", [LIMIT + 1, 3 * LIMIT, DRAIN_BYTES])
def test_the_rest_of_a_body_over_the_limit_is_read_and_thrown_away_before_the_413(
    customer: TestClient, size: int, declared: bool
) -> None:
    streamed = post_streamed(customer, padded({"instances": [ROW]}, size), declared=declared)

    refused_for_its_size(streamed)
    assert streamed.taken == size  # so the client, done sending, can read the answer


def test_a_body_that_says_it_is_over_the_drain_allowance_is_refused_unread(
    customer: TestClient,
) -> None:
    streamed = post_streamed(customer, padded({"instances": [ROW]}, DRAIN_BYTES + 1), declared=True)

    refused_for_its_size(streamed)
    assert streamed.taken == 0


def test_a_body_that_waits_for_100_continue_is_refused_unread(customer: TestClient) -> None:
    streamed = post_streamed(
        customer,
        padded({"instances": [ROW]}, LIMIT + 1),
        declared=True,
        headers={"expect": "100-continue"},
    )

    refused_for_its_size(streamed)
    assert streamed.taken == 0


def test_a_body_of_unknown_length_is_read_no_further_than_the_drain_allowance(
    customer: TestClient,
) -> None:
    streamed = post_streamed(customer, padded({"instances": [ROW]}, DRAIN_BYTES + 4 * CHUNK))

    refused_for_its_size(streamed)
    assert DRAIN_BYTES < streamed.taken <= DRAIN_BYTES + CHUNK


def test_a_body_of_unknown_length_is_read_up_to_the_limit(customer: TestClient) -> None:
    streamed = post_streamed(customer, padded({"instances": [ROW]}, LIMIT))

    assert streamed.status == 200, streamed.body
    assert streamed.body["predictions"] == pytest.approx(
        predicted("customer_needs", [ROW]), rel=RTOL
    )
    assert streamed.taken == LIMIT
    assert "connection" not in streamed.headers


def test_a_client_that_goes_away_mid_body_is_logged_as_its_own_mistake(
    customer: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    streamed = post_streamed(customer, padded({"instances": [ROW]}, 4 * CHUNK), gone_after=2)

    assert (streamed.status, streamed.taken) == (400, 2 * CHUNK)
    assert streamed.body["error"]["message"] == (
        "the client closed the connection before sending the whole body"
    )
    logged = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(entry["severity"], entry["error"]) for entry in logged] == [("WARNING", "bad_request")]
