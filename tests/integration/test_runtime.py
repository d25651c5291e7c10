"""The functions on the Python that deploy.sh deploys them to (its default `--runtime`).

A virtual environment on that Python gets requirements.txt alone, as Cloud Run functions builds
one (tests/integration/runtime_env.py). On it every entry point imports with warnings as errors,
and real functions-framework servers answer requests and score an upload exactly as servers on
the suite's own Python do: the rest of the suite checks those answers, this module checks that
the deployed Python gives the same ones. A missing interpreter fails these tests; it never skips
them.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import requests

import main
from tests.integration.conftest import TARGETS
from tests.integration.runtime_env import (
    REQUIREMENTS,
    deploy_runtime,
    ensure,
    find_interpreter,
    version_of,
)
from tests.integration.support import (
    REPO,
    FakeGcs,
    FunctionServer,
    list_objects,
    post_event,
    put_object,
    storage_event,
)

VERSION = version_of(deploy_runtime())
SUITE = f"{sys.version_info.major}.{sys.version_info.minor}"
REQUESTS = {
    "customer_needs": [
        ("GET", "/", None, None),
        (
            "POST",
            "/",
            "application/json",
            b'{"instances": [{"age": 35, "gender": "F", "income": 52000},'
            b' {"age": "61", "gender": "male", "income": 90000.5},'
            b' {"age": 95, "gender": "female", "income": 5000000}],'
            b' "parameters": {"interval": 0.9, "explain": true}}',
        ),
        ("POST", "/", "text/csv", b"id,income,age,gender\nA-1,52000,35,F\nB-2,90000,61,male\n"),
        ("POST", "/", "application/json", b'{"instances": [{"age": "n/a", "gender": "F"}]}'),
        (
            "POST",
            "/v2/models/customer_needs/infer",
            "application/json",
            b'{"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [35]},'
            b' {"name": "gender", "shape": [1], "datatype": "BYTES", "data": ["F"]},'
            b' {"name": "income", "shape": [1], "datatype": "FP64", "data": [52000]}]}',
        ),
    ],
    "market_trend": [
        ("GET", "/", None, None),
        (
            "POST",
            "/",
            "application/json",
            b'{"instances": [{"sales": 9000, "population": 300.5, "gdp": 13000},'
            b' {"sales": "4000.5", "population": "200", "gdp": 6000}],'
            b' "parameters": {"interval": 0.8, "explain": true}}',
        ),
        ("POST", "/", "text/csv", b"quarter,sales,population,gdp\nq1,9000,300,13000\n"),
    ],
}
UPLOAD = "incoming/customer_needs/crm/customers.csv"
UPLOADED_ROWS = (
    b"id,age,gender,income\r\n1,35,F,52000\r\n2,61,male,90000\r\n3,,female,1000\r\n"
    b"4,95,Other,5000000\r\n5,18,m,0\r\n"
)


@pytest.fixture(scope="module")
def runtime_python() -> str:
    return str(ensure(VERSION))


def python_of(server: FunctionServer) -> str:
    """The interpreter a running server really is, such as python3.13."""
    assert server.process is not None
    return Path(f"/proc/{server.process.pid}/exe").resolve().name


@contextlib.contextmanager
def servers(
    target: str, env: dict[str, str], logs: Path, runtime_python: str
) -> Iterator[tuple[FunctionServer, FunctionServer]]:
    """`target` served twice: on the deploy runtime's Python, and on the suite's."""
    started = [
        FunctionServer(target, env, logs / f"{target}-{name}.log", python)
        for name, python in (("runtime", runtime_python), ("suite", sys.executable))
    ]
    try:
        for server in started:
            server.start()
        yield started[0], started[1]
    finally:
        for server in started:
            server.stop()


def test_the_environment_is_the_runtimes_python_with_every_pin(runtime_python: str) -> None:
    lines = [line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines()]
    requirements = [line for line in lines if line]
    version = subprocess.run(
        [runtime_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    frozen = subprocess.run(
        [runtime_python, "-m", "pip", "freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout

    installed = {pinned(line) for line in frozen.splitlines()}
    assert version == VERSION
    assert requirements
    assert [line for line in requirements if "==" not in line] == [], "every runtime pin is exact"
    assert [line for line in requirements if pinned(line) not in installed] == []


def pinned(requirement: str) -> str:
    """`name==version` with the name as pip compares names (PEP 503)."""
    name, _, version = requirement.partition("==")
    return f"{re.sub(r'[-_.]+', '-', name.strip().lower())}=={version.strip()}"


def test_a_missing_interpreter_fails_and_says_how_to_get_it() -> None:
    with pytest.raises(RuntimeError, match=r"Python 3\.99, the runtime deploy\.sh deploys to,"):
        find_interpreter("3.99")


def test_every_entry_point_imports_on_the_runtime_with_warnings_as_errors(
    runtime_python: str,
) -> None:
    script = "import main\nfor name in main.__all__:\n    getattr(main, name)\nprint(*main.__all__)"

    done = subprocess.run(
        [runtime_python, "-W", "error", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == main.__all__


def answer(server: FunctionServer, method: str, path: str, kind: str | None, body: bytes | None):
    headers = {"Content-Type": kind} if kind else {}
    return requests.request(method, server.url + path, data=body, headers=headers, timeout=60)


@pytest.mark.parametrize("model", list(TARGETS))
def test_http_functions_answer_on_the_runtime_as_on_the_suites_python(
    gcs: FakeGcs, published: str, tmp_path: Path, runtime_python: str, model: str
) -> None:
    env = {"STORAGE_EMULATOR_HOST": gcs.url, "MODEL_STORE": published}

    with servers(TARGETS[model], env, tmp_path, runtime_python) as (runtime, suite):
        pythons = python_of(runtime), python_of(suite)
        for method, path, kind, body in REQUESTS[model]:
            on_runtime = answer(runtime, method, path, kind, body)
            on_suite = answer(suite, method, path, kind, body)

            assert on_runtime.status_code == on_suite.status_code, (path, on_runtime.text)
            assert on_runtime.headers["Content-Type"] == on_suite.headers["Content-Type"]
            assert on_runtime.content == on_suite.content, (method, path, body)
        assert on_suite.status_code == 200

    assert pythons == (f"python{VERSION}", f"python{SUITE}")


def scored(gcs: FakeGcs, server: FunctionServer, event_id: str, time: str) -> dict[str, bytes]:
    """The rows uploaded to a new bucket, the event delivered to `server`: the results by file
    name, with the bucket and the generation, which differ from one upload to the next, as
    BUCKET and GENERATION."""
    bucket = f"data-{uuid.uuid4().hex[:12]}"
    gcs.create_bucket(bucket)
    generation = put_object(gcs, bucket, UPLOAD, UPLOADED_ROWS)
    event = storage_event(bucket, UPLOAD, generation, event_id=event_id, time=time)

    response = post_event(server.url, event, "binary")

    assert response.status_code == 200, response.text
    folder = f"results/customer_needs/crm/customers.csv/{generation}/"
    return {
        key.removeprefix(folder): gcs.get(bucket, key)
        .replace(bucket.encode(), b"BUCKET")
        .replace(str(generation).encode(), b"GENERATION")
        for key in list_objects(gcs, bucket, folder)
    }


def test_an_upload_is_scored_on_the_runtime_as_on_the_suites_python(
    gcs: FakeGcs, published: str, tmp_path: Path, runtime_python: str
) -> None:
    env = {
        "STORAGE_EMULATOR_HOST": gcs.url,
        "MODEL_STORE": published,
        "FUNCTION_SIGNATURE_TYPE": "cloudevent",
    }
    event_id, time = uuid.uuid4().hex, datetime.now(UTC).isoformat().replace("+00:00", "Z")

    with servers("score_upload", env, tmp_path, runtime_python) as (runtime, suite):
        on_runtime = scored(gcs, runtime, event_id, time)
        on_suite = scored(gcs, suite, event_id, time)

    runtime_report, suite_report = (
        orjson.loads(run.pop("report.json")) for run in (on_runtime, on_suite)
    )
    assert on_runtime == on_suite
    assert sorted(on_suite) == ["rejected.csv", "scored.csv"]
    # How long each phase took is the one thing two runs may not share.
    assert runtime_report.pop("timings").keys() == suite_report.pop("timings").keys()
    assert runtime_report == suite_report
    assert suite_report["status"] == "scored", suite_report
    assert suite_report["rows"] == {"read": 5, "scored": 4, "rejected": 1}
