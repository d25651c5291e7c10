"""A body over MAX_BODY_BYTES against a real functions-framework server, as clients send it.

The server reads and throws away the rest of such a body, up to functions.http.DRAIN_BYTES,
before it answers 413 and closes the connection, so a client still sending reads the answer
instead of a reset; past that it closes at once. It never holds the body in memory.
"""

from __future__ import annotations

import contextlib
import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from functions.http import DRAIN_BYTES
from tests.integration.conftest import TARGETS, launcher, new_bucket, publish_all
from tests.integration.support import FakeGcs, FunctionServer, server_pids

LIMIT = 1024 * 1024
MESSAGE = (
    f"request body is larger than {LIMIT} bytes; score larger batches as a CSV file uploaded to "
    "incoming/customer_needs/ in the data bucket, or from BigQuery"
)
PIECE = 64 * 1024
OVERSIZED = b'{"instances": [' + b" " * (4 * LIMIT) + b"]}"
FAR_OVER = 1024 * 1024 * 1024  # 32 times the drain allowance
ROW = {"age": 35, "gender": "female", "income": 52000}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(gcs: FakeGcs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionServer]:
    store = publish_all(gcs, new_bucket(gcs))
    with launcher(gcs, tmp_path_factory.mktemp("servers")) as start:
        yield start(TARGETS["customer_needs"], MODEL_STORE=store, MAX_BODY_BYTES=str(LIMIT))


def pieces() -> Iterator[bytes]:
    """OVERSIZED as a body of unknown length: each client then sends it chunked."""
    for at in range(0, len(OVERSIZED), PIECE):
        yield OVERSIZED[at : at + PIECE]


def with_urllib(url: str, chunked: bool) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(url, data=pieces() if chunked else OVERSIZED, headers=JSON)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as answer:
        return answer.code, dict(answer.headers), json.loads(answer.read())


def with_requests(url: str, chunked: bool) -> tuple[int, dict[str, str], Any]:
    response = requests.post(url, data=pieces() if chunked else OVERSIZED, headers=JSON, timeout=30)
    return response.status_code, dict(response.headers), response.json()


def worker_memory(server: FunctionServer) -> dict[str, int]:
    """VmRSS and VmHWM (bytes) of the one worker process that serves requests."""
    [worker] = server_pids(server)[1:]
    status = Path(f"/proc/{worker}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status)
    return {name: int(fields[name].split()[0]) * 1024 for name in ("VmRSS", "VmHWM")}


def send_until_cut_off(server: FunctionServer, *, chunked: bool) -> tuple[int, bytes]:
    """POST a FAR_OVER-byte body over a raw keep-alive connection, declared or chunked, until
    the server stops taking it: (bytes handed to the socket, what the server answered)."""
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % FAR_OVER
    head = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    piece = b" " * LIMIT
    framed = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
    sent = 0
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        try:
            sock.sendall(head + framing + b"\r\n\r\n")
            while sent < FAR_OVER:
                sock.sendall(framed)
                sent += len(piece)
        except OSError:  # reset or broken pipe: the server closed the connection
            pass
        answer = b""
        with contextlib.suppress(OSError):
            answer = sock.recv(4096)
    return sent, answer


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
@pytest.mark.parametrize("client", [with_urllib, with_requests], ids=["urllib", "requests"])
def test_ordinary_clients_read_the_413_of_a_body_over_the_limit(
    server: FunctionServer, client: Any, chunked: bool
) -> None:
    status, headers, body = client(server.url, chunked)

    assert status == 413
    assert body["error"] == {"code": "payload_too_large", "message": MESSAGE, "details": []}
    assert headers["connection"] == "close"


def test_a_client_that_waits_for_100_continue_gets_the_413_instead(
    server: FunctionServer,
) -> None:
    head = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\nExpect: 100-continue\r\n\r\n" % len(OVERSIZED)
    )
    answer = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head)
        while chunk := sock.recv(4096):  # to the end: the server closes the connection
            answer += chunk

    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"\r\nconnection: close\r\n" in rest.lower()
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["message"] == MESSAGE


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_a_body_far_over_the_drain_allowance_is_cut_off_and_the_server_stays_well(
    server: FunctionServer, chunked: bool
) -> None:
    assert requests.post(server.url, json={"instances": [ROW]}, timeout=30).status_code == 200
    workers = server_pids(server)
    before = worker_memory(server)

    sent, answer = send_until_cut_off(server, chunked=chunked)

    after = worker_memory(server)
    assert sent < 2 * DRAIN_BYTES, "the server went on reading past the drain allowance"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413 ")
    assert after["VmHWM"] - before["VmHWM"] < DRAIN_BYTES // 2
    assert after["VmRSS"] - before["VmRSS"] < DRAIN_BYTES // 2
    assert requests.post(server.url, json={"instances": [ROW]}, timeout=30).status_code == 200
    assert server_pids(server) == workers
