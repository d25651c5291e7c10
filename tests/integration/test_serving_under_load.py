"""The HTTP functions under load, on the ASGI stack production runs: a 100,000-row batch in
flight, small requests beside it, and a SIGTERM in the middle.

No test here measures time. Each asserts outcomes, and order where order is the point: which
answer arrived first, read from the sockets themselves.
"""

from __future__ import annotations

import contextlib
import csv
import http.client
import io
import os
import select
import signal
import socket
import time
from pathlib import Path

import orjson
import pytest
import requests

from tests.integration.conftest import TARGETS, StartFunction
from tests.integration.support import FunctionServer

ROWS = 100_000  # the most one request may carry (MAX_INSTANCES)
GENDERS = ("female", "male", "other")
ONE_CUSTOMER = {"age": 35, "gender": "female", "income": 52000}
# Intervals make the batch heavier, so it is surely still running while the small ones go by.
LEVEL = 0.9


def customers(count: int) -> list[dict[str, object]]:
    return [
        {"age": 20 + i % 60, "gender": GENDERS[i % 3], "income": 20_000 + 100 * (i % 1000)}
        for i in range(count)
    ]


def json_batch(rows: list[dict[str, object]]) -> tuple[str, bytes, str]:
    body = orjson.dumps({"instances": rows, "parameters": {"interval": LEVEL}})
    return "/", body, "application/json"


def csv_batch(rows: list[dict[str, object]]) -> tuple[str, bytes, str]:
    lines = ["age,gender,income\n", *(f"{r['age']},{r['gender']},{r['income']}\n" for r in rows)]
    return f"/?interval={LEVEL}", "".join(lines).encode(), "text/csv"


def send_batch(
    server: FunctionServer, path: str, body: bytes, content_type: str
) -> http.client.HTTPConnection:
    """POST `body` on a connection of its own and return once the server has read all of it;
    the answer is left unread."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
    conn.request("POST", path, body, {"Content-Type": content_type})
    wait_until_read(conn, server.port)
    return conn


def wait_until_read(conn: http.client.HTTPConnection, server_port: int) -> None:
    """Wait until the server process has read every byte sent on `conn`.

    `conn.request` returns once the kernel holds the body, and megabytes of it can still sit
    in the socket buffers; until they are read, the server's handler has not even begun.
    """
    deadline = time.monotonic() + 60
    while unread_request_bytes(conn.sock.getsockname()[1], server_port) > 0:
        assert time.monotonic() < deadline, "the server stopped reading the request body"
        time.sleep(0.001)


def unread_request_bytes(client_port: int, server_port: int) -> int:
    """Bytes of the request still in the kernel (from /proc/net/tcp): not yet acknowledged on
    the client's side, or received but not yet read on the server's."""
    client, server = f"0100007F:{client_port:04X}", f"0100007F:{server_port:04X}"
    unread = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        send_queue, receive_queue = (int(q, 16) for q in fields[4].split(":"))
        if (local, remote) == (client, server):
            unread += send_queue
        elif (local, remote) == (server, client):
            unread += receive_queue
    return unread


def answer_arrived(conn: http.client.HTTPConnection) -> bool:
    """Whether any byte of the answer on `conn` has arrived, without reading it."""
    readable, _, _ = select.select([conn.sock], [], [], 0)
    return bool(readable)


def json_predictions(body: bytes) -> list[dict[str, object]]:
    return list(orjson.loads(body)["predictions"])


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode())))


@pytest.fixture
def customer(running: dict[str, FunctionServer]) -> FunctionServer:
    return running["customer_needs"]


def small_prediction(server: FunctionServer) -> float:
    response = requests.post(server.url, json=ONE_CUSTOMER, timeout=30)
    assert response.status_code == 200, response.text
    [prediction] = response.json()["predictions"]
    assert isinstance(prediction, float)
    return prediction


def test_sigterm_lets_the_request_in_flight_finish_then_the_server_exits(
    published: str, start_function: StartFunction
):
    """Cloud Run sends SIGTERM to the container and SIGKILL 10 s later: a request already being
    worked on must still get its whole answer, and the server must then exit by itself.

    The signal goes to the process `functions-framework` started, gunicorn's master, as it
    would in the container. (gunicorn's own graceful_timeout, 30 s, is longer than Cloud Run
    waits: past 10 s, Cloud Run's SIGKILL is what ends a request.)
    """
    server = start_function(TARGETS["customer_needs"], MODEL_STORE=published)
    small_prediction(server)  # the model is loaded before the batch
    assert server.process is not None
    with contextlib.closing(send_batch(server, *json_batch(customers(ROWS)))) as conn:
        os.kill(server.process.pid, signal.SIGTERM)
        in_flight = not answer_arrived(conn)
        response = conn.getresponse()
        body = response.read()
    server.process.wait(timeout=60)

    assert in_flight, "the batch was answered before SIGTERM: nothing was tested"
    assert response.status == 200, body[:500]
    predictions = json_predictions(body)
    assert len(predictions) == ROWS
    assert all(isinstance(p["purchase_amount"], float) for p in predictions)
    assert server.process.returncode == 0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=5)


@pytest.mark.parametrize("encode", [json_batch, csv_batch], ids=["json", "csv"])
def test_small_requests_are_answered_while_a_large_batch_runs(customer, encode):
    """A batch runs on the batch thread, so the event loop goes on answering small requests;
    each of them is answered before the batch, which is then answered in full."""
    rows = customers(ROWS)
    expected = small_prediction(customer)  # and the model is loaded
    with contextlib.closing(send_batch(customer, *encode(rows))) as conn:
        small = [small_prediction(customer) for _ in range(3)]
        batch_answered_first = answer_arrived(conn)
        response = conn.getresponse()
        body = response.read()

    assert small == [expected] * 3
    assert not batch_answered_first, "a small request waited for the batch"
    assert response.status == 200, body[:500]
    if encode is json_batch:
        predictions = json_predictions(body)
        assert len(predictions) == ROWS
        assert all(p["interval"]["level"] == LEVEL for p in predictions)
    else:
        answered = csv_rows(body)
        assert [row["age"] for row in answered] == [str(row["age"]) for row in rows]
        assert all(float(row["purchase_amount"]) > 0 for row in answered)
        assert "purchase_amount_lower" in answered[0]


@pytest.mark.parametrize("name", list(TARGETS))
def test_functions_are_served_by_uvicorn(running: dict[str, FunctionServer], name: str):
    """`@functions_framework.aio.http` makes functions-framework run gunicorn with uvicorn's
    worker, the stack the batch thread and the drain on SIGTERM are built for."""
    response = requests.get(running[name].url, timeout=30)

    assert response.status_code == 200, response.text
    assert response.headers["Server"] == "uvicorn"
