from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from shared.store import GcsBucket, LocalFolder, publish
from tests.integration.support import REPO, FakeGcs, FunctionServer, PersistentFakeGcs

BUNDLED = LocalFolder(REPO / "models")
MODELS = ("customer_needs", "market_trend")


def bundled_version(name: str) -> str:
    return str(orjson.loads(BUNDLED.read(f"{name}/current.json"))["version"])


BUNDLED_VERSION = bundled_version("customer_needs")
TARGETS = {"customer_needs": "predict_customer_needs", "market_trend": "predict_market_trend"}


@pytest.fixture(scope="session")
def gcs() -> Iterator[FakeGcs]:
    emulator = FakeGcs()
    emulator.start()
    yield emulator
    emulator.stop()


def new_bucket(gcs: FakeGcs) -> str:
    if gcs.process is None:  # an earlier test stopped it on purpose
        gcs.start()
    name = f"models-{uuid.uuid4().hex[:12]}"
    gcs.create_bucket(name)
    return name


@pytest.fixture
def restartable_gcs(tmp_path: Path) -> Iterator[PersistentFakeGcs]:
    """An emulator of its own that keeps objects across a stop and start (outage tests)."""
    emulator = PersistentFakeGcs(tmp_path / "storage")
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture
def bucket(gcs: FakeGcs) -> str:
    """A new bucket per test, so no test sees another's objects."""
    return new_bucket(gcs)


def gcs_backend(gcs: FakeGcs, bucket: str, prefix: str = "models") -> GcsBucket:
    return GcsBucket(bucket, prefix, timeout_seconds=5, emulator_host=gcs.url)


def publish_bundled(backend: GcsBucket | LocalFolder, name: str) -> dict[str, str]:
    """Copy the bundled version of `name` into `backend` with the product's own publish."""
    pointer = orjson.loads(BUNDLED.read(f"{name}/current.json"))
    metadata = orjson.loads(BUNDLED.read(f"{name}/{pointer['version']}/metadata.json"))
    artifact = BUNDLED.read(f"{name}/{pointer['version']}/model.joblib")
    return publish(backend, name, pointer["version"], artifact, metadata)


def publish_all(gcs: FakeGcs, bucket: str) -> str:
    backend = gcs_backend(gcs, bucket)
    for name in MODELS:
        publish_bundled(backend, name)
    return f"gs://{bucket}/models"


@pytest.fixture
def published(gcs: FakeGcs, bucket: str) -> str:
    """Both bundled models published to the emulator; returns the MODEL_STORE value."""
    return publish_all(gcs, bucket)


StartFunction = Callable[..., FunctionServer]


@contextlib.contextmanager
def launcher(gcs: FakeGcs, log_dir: Path) -> Iterator[StartFunction]:
    """Start real functions-framework servers; every one started is stopped on exit."""
    servers: list[FunctionServer] = []

    def start(target: str, **env: str) -> FunctionServer:
        settings = {"STORAGE_EMULATOR_HOST": gcs.url, "STORAGE_TIMEOUT_SECONDS": "2", **env}
        server = FunctionServer(target, settings, log_dir / f"{target}-{len(servers)}.log")
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def start_function(gcs: FakeGcs, tmp_path: Path) -> Iterator[StartFunction]:
    with launcher(gcs, tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def running(
    gcs: FakeGcs, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, FunctionServer]]:
    """Both functions serving the bundled models from the emulator, shared by a module's tests.

    For tests that only send requests; a test that changes storage starts its own.
    """
    store = publish_all(gcs, new_bucket(gcs))
    with launcher(gcs, tmp_path_factory.mktemp("servers")) as start:
        yield {
            name: start(target, MODEL_STORE=store, CORS_ALLOWED_ORIGINS="http://app.test")
            for name, target in TARGETS.items()
        }
