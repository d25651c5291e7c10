"""The real entry points, in this process: `TestClient(create_app(target, main.py))`.

Settings are read once per process, so this tier runs with the defaults: the bundled models in
models/, no CORS origins, the default limits. A test that needs another setting, or a fresh
interpreter, runs a small program in a subprocess (support.run_python).
"""

from __future__ import annotations

import pytest
from functions_framework import create_app
from starlette.testclient import TestClient

from functions.http_io import runtime
from shared.settings import Settings
from tests.http.support import MAIN, TARGETS


@pytest.fixture(scope="session")
def clients() -> dict[str, TestClient]:
    """One test client per HTTP function, keyed by model name."""
    settings = runtime().settings
    defaults = Settings()
    assert (
        settings.model_store,
        settings.max_body_bytes,
        settings.max_instances,
        settings.cors_allowed_origins,
    ) == (
        defaults.model_store,
        defaults.max_body_bytes,
        defaults.max_instances,
        defaults.cors_allowed_origins,
    ), "tests/http expects the default settings: unset MODEL_STORE, MAX_* and CORS_* to run it"
    return {name: TestClient(create_app(target, MAIN)) for name, target in TARGETS.items()}


@pytest.fixture(scope="session")
def customer(clients: dict[str, TestClient]) -> TestClient:
    return clients["customer_needs"]


@pytest.fixture(scope="session")
def market(clients: dict[str, TestClient]) -> TestClient:
    return clients["market_trend"]
