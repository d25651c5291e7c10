"""`make serve` as a newcomer meets it.

scripts/serve.sh runs as a subprocess with the variables the README names (PORT_CUSTOMER_NEEDS,
PORT_MARKET_TREND) on free loopback ports, some of them taken by the test. The Makefile's setup
steps run with `make` on a copy of the Makefile whose interpreter is a stand-in (it makes a fake
`.venv` and prints what pip prints), so no second real environment is made.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from shared.schema import MODELS
from tests.integration.support import REPO, free_port

SERVE = REPO / "scripts" / "serve.sh"
PORT_VARIABLES = {
    "predict_customer_needs": "PORT_CUSTOMER_NEEDS",
    "predict_market_trend": "PORT_MARKET_TREND",
}
MODEL_OF = {model.function: model.name for model in MODELS.values()}
LINE_TIMEOUT = 150  # past serve.sh's own 120 s wait for a server to answer


class Serving:
    """scripts/serve.sh running, its output read line by line as it comes."""

    def __init__(self, env: dict[str, str]) -> None:
        environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/"), **env}
        self.process = subprocess.Popen(
            ["bash", str(SERVE)],
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group, so a failed test can still stop it all
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str) -> re.Match[str]:
        """The first line from now on that matches `pattern`."""
        while True:
            try:
                line = self._queue.get(timeout=LINE_TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no line matched {pattern!r}:\n" + self.output()) from None
            if line is None:
                raise AssertionError(f"serve.sh ended before {pattern!r}:\n" + self.output())
            self.lines.append(line)
            if match := re.search(pattern, line):
                return match

    def finish(self) -> int:
        """Wait for serve.sh to exit by itself, read what it printed; its exit status."""
        status = self.process.wait(timeout=LINE_TIMEOUT)
        while (line := self._queue.get(timeout=10)) is not None:
            self.lines.append(line)
        return status

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        """Kill whatever is left of serve.sh's group, and finish reading its output."""
        with contextlib.suppress(ProcessLookupError):  # the group is gone: nothing is left
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._reader.join(timeout=30)


@pytest.fixture
def serving() -> Iterator[list[Serving]]:
    """Every serve.sh a test starts; any still running at the end is stopped."""
    started: list[Serving] = []
    yield started
    for run in started:
        run.stop()


def start_serving(serving: list[Serving], **env: str) -> Serving:
    run = Serving(env)
    serving.append(run)
    return run


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    second = free_port()
    while second == first:
        second = free_port()
    return first, second


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_each_url_is_printed_once_its_function_answers(serving: list[Serving]) -> None:
    ports = dict(zip(PORT_VARIABLES, two_free_ports(), strict=True))
    run = start_serving(
        serving, **{PORT_VARIABLES[function]: str(port) for function, port in ports.items()}
    )

    for function, port in ports.items():
        url = run.wait_for(rf"^{function}: (\S+)$").group(1)
        # Asked the moment the line appears: the URL must already answer.
        response = requests.get(url, timeout=10)

        assert url == f"http://127.0.0.1:{port}/"
        assert response.status_code == 200, response.text
        assert response.json()["name"] == MODEL_OF[function]
    run.wait_for(r"^Serving models from models/; Ctrl-C to stop\.$")

    run.process.send_signal(signal.SIGINT)  # Ctrl-C

    assert run.finish() == 130
    assert not [port for port in ports.values() if accepts(port)], "a server outlived serve.sh"


def listening_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def bound_socket(port: int) -> socket.socket:
    """Holds the port without accepting connections: only binding there finds it taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    return sock


@pytest.mark.parametrize(
    ("function", "take"),
    [
        ("predict_customer_needs", listening_socket),
        ("predict_market_trend", listening_socket),
        ("predict_market_trend", bound_socket),
    ],
)
def test_a_busy_port_is_named_with_the_variable_that_moves_it(
    serving: list[Serving], function: str, take: Callable[[int], socket.socket]
) -> None:
    ports = dict(zip(PORT_VARIABLES, two_free_ports(), strict=True))
    taken = ports[function]
    with take(taken):
        run = start_serving(
            serving, **{PORT_VARIABLES[name]: str(port) for name, port in ports.items()}
        )
        status = run.finish()

    variable = PORT_VARIABLES[function]
    assert status == 1
    message = next(line for line in run.lines if line.startswith("serve.sh: "))
    assert f"port {taken}" in message
    assert f"set {variable} to a free port, e.g. {variable}=" in message
    assert f"{function}: http" not in run.output()
    assert not [port for port in ports.values() if port != taken and accepts(port)]


def test_a_port_that_is_not_a_number_is_refused(serving: list[Serving]) -> None:
    run = start_serving(serving, PORT_CUSTOMER_NEEDS="80a", PORT_MARKET_TREND=str(free_port()))

    assert run.finish() == 1
    assert "PORT_CUSTOMER_NEEDS must be a port number from 1 to 65535, not '80a'" in run.output()


# The Makefile's setup steps, on a copy with a stand-in interpreter.

STAND_IN = r"""
import json, os, shutil, sys
from pathlib import Path

args = sys.argv[1:]
with open(os.environ["STAND_IN_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
if args == ["--version"]:
    print("Python 3.99.0")
elif args[:2] == ["-m", "venv"]:
    (Path(args[2]) / "bin").mkdir(parents=True)
    shutil.copy(sys.argv[0], Path(args[2]) / "bin" / "python")
elif args[:3] == ["-m", "pip", "install"] and not {"-q", "--quiet"} & set(args):
    # What pip prints per package, unless told to be quiet.
    for line in Path(args[args.index("-r") + 1]).read_text().splitlines():
        if line and not line.startswith(("#", "-")):
            print(f"Collecting {line}", flush=True)
"""


@pytest.fixture
def make_copy(tmp_path: Path) -> Path:
    """The Makefile and its requirements files in an empty folder, and a stand-in python."""
    for name in ("Makefile", "requirements.txt", "requirements-dev.txt"):
        shutil.copy(REPO / name, tmp_path / name)
    stand_in = tmp_path / "stand-in-python"
    stand_in.write_text(f"#!{sys.executable} -S\n{STAND_IN}")
    stand_in.chmod(0o755)
    return tmp_path


def run_make(folder: Path, target: str) -> tuple[str, list[list[str]]]:
    """make TARGET in `folder`: what it printed, and the calls the stand-in received."""
    log = folder / "calls.jsonl"
    before = log.read_text().splitlines() if log.exists() else []
    make = shutil.which("make")
    assert make is not None, "make is needed (it runs the quick start)"
    result = subprocess.run(
        [make, "--no-print-directory", target, f"PYTHON={folder / 'stand-in-python'}"],
        cwd=folder,
        env={"PATH": os.environ["PATH"], "STAND_IN_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    after = log.read_text().splitlines() if log.exists() else []
    return result.stdout + result.stderr, [json.loads(line) for line in after[len(before) :]]


def line_index(output: str, start: str) -> int:
    lines = output.splitlines()
    return next(i for i, line in enumerate(lines) if line.startswith(start))


@pytest.mark.parametrize(
    ("target", "requirements", "announced"),
    [
        (".venv/.runtime", "requirements.txt", "==> installing the runtime dependencies"),
        (".venv/.dev", "requirements-dev.txt", "==> installing the runtime, test and tool"),
    ],
)
def test_a_first_setup_says_what_it_is_doing_as_it_goes(
    make_copy: Path, target: str, requirements: str, announced: str
) -> None:
    output, calls = run_make(make_copy, target)

    creating = line_index(output, "==> creating .venv with Python 3.99.0")
    installing = line_index(output, announced)
    first_package = line_index(output, "Collecting ")
    assert creating < installing < first_package
    assert [call[:2] for call in calls] == [["--version"], ["-m", "venv"], ["-m", "pip"]]
    assert calls[-1][-2:] == ["-r", requirements]
    assert (make_copy / target).exists()


def test_a_second_setup_does_nothing_until_the_requirements_change(make_copy: Path) -> None:
    run_make(make_copy, ".venv/.runtime")

    unchanged, calls_unchanged = run_make(make_copy, ".venv/.runtime")
    os.utime(make_copy / "requirements.txt")  # edited after the environment was made
    marker = make_copy / ".venv" / ".runtime"
    os.utime(marker, (marker.stat().st_atime - 60, marker.stat().st_mtime - 60))
    changed, calls_changed = run_make(make_copy, ".venv/.runtime")

    assert calls_unchanged == []
    assert "==>" not in unchanged
    assert [call[:3] for call in calls_changed] == [["-m", "pip", "install"]]
    assert "==> creating" not in changed
    assert "==> installing the runtime dependencies" in changed


def test_shellcheck_finds_nothing_in_serve_sh() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed: apt-get install -y shellcheck")

    result = subprocess.run(
        [shellcheck, str(SERVE)], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
