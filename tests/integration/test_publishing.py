"""Publishing and rollback against the storage emulator, as the command line runs them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import orjson
import pytest
import requests

from models import data
from models.recipes import RECIPES
from models.training import creation_time, train
from shared.errors import PublishConflict
from shared.store import LocalFolder, load_current, publish, set_current
from tests.integration.conftest import BUNDLED_VERSION, StartFunction, gcs_backend, publish_all
from tests.integration.support import REPO, FakeGcs, free_port

ROW = {"age": 40, "gender": "female", "income": 60000}


def models_cli(gcs: FakeGcs, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "models", *args],
        cwd=REPO,
        env={**os.environ, "STORAGE_EMULATOR_HOST": gcs.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_models_cli(gcs: FakeGcs, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "models", *args],
        cwd=REPO,
        env={**os.environ, "STORAGE_EMULATOR_HOST": gcs.url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def staged_version(tmp_path, seed: int) -> tuple[LocalFolder, str]:
    """A trained customer model in its own local store, as `python -m models train` leaves it."""
    store = LocalFolder(tmp_path / f"staging-{seed}")
    trained = train(
        RECIPES["customer_needs"], data.customers(400, seed=seed), None, creation_time()
    )
    publish(
        store, "customer_needs", trained.metadata["version"], trained.artifact, trained.metadata
    )
    return store, trained.metadata["version"]


def test_publish_race_between_processes_loses_no_update(gcs: FakeGcs, bucket: str, tmp_path):
    store = publish_all(gcs, bucket)
    staged = [staged_version(tmp_path, seed) for seed in (1, 2, 3)]

    processes = [
        models_cli(gcs, "publish", "customer_needs", "--from", str(s.root), "--to", store)
        for s, _ in staged
    ]
    results = [(p.wait(timeout=120), *p.communicate()) for p in processes]
    for process in processes:
        process.stdout.close()
        process.stderr.close()

    winners = [out for code, out, _ in results if code == 0]
    losers = [err for code, _, err in results if code != 0]
    assert winners
    assert all("changed while publishing" in err for err in losers)
    previous = [out.split(": ")[-1].split(" -> ")[0] for out in winners]
    assert len(previous) == len(set(previous))  # no two winners replaced the same version
    live = load_current(gcs_backend(gcs, bucket), "customer_needs")  # verifies the sha256 too
    assert live.version in {version for _, version in staged}


def test_two_publishers_that_read_the_same_generation_leave_one_winner(
    gcs: FakeGcs, bucket: str, tmp_path
):
    backend = gcs_backend(gcs, bucket)
    publish_all(gcs, bucket)
    versions = [staged_version(tmp_path, seed)[1] for seed in (4, 5)]
    for seed, version in zip((4, 5), versions, strict=True):
        source = LocalFolder(tmp_path / f"staging-{seed}")
        for key in ("model.joblib", "metadata.json"):
            key = f"customer_needs/{version}/{key}"
            backend.write(key, source.read(key), if_generation_match=0)
    both_read = threading.Barrier(2)

    class Racing:
        """The real emulator, with both publishers held until each has read the generation."""

        location = backend.location
        read, write = backend.read, backend.write

        def generation(self, key: str) -> int:
            value = backend.generation(key)
            both_read.wait(timeout=10)
            return value

    outcomes: list[str] = []

    def move(version: str) -> None:
        try:
            set_current(Racing(), "customer_needs", version)
            outcomes.append(f"won {version}")
        except PublishConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=move, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(o.split()[0] for o in outcomes) == ["conflict", "won"]
    winner = next(o.split()[1] for o in outcomes if o.startswith("won"))
    pointer = orjson.loads(gcs.get(bucket, "models/customer_needs/current.json"))
    assert pointer["version"] == winner
    assert load_current(backend, "customer_needs").version == winner


def test_rollback_is_picked_up_by_a_running_function(
    gcs: FakeGcs, bucket: str, tmp_path, start_function: StartFunction
):
    store = publish_all(gcs, bucket)
    staging, newer = staged_version(tmp_path, seed=6)
    published = run_models_cli(
        gcs, "publish", "customer_needs", "--from", str(staging.root), "--to", store
    )
    assert published.returncode == 0, published.stderr
    server = start_function(
        "predict_customer_needs", MODEL_STORE=store, MODEL_REFRESH_SECONDS="0.5"
    )
    assert requests.post(server.url, json=ROW, timeout=30).headers["X-Model-Version"] == newer

    rolled = run_models_cli(
        gcs, "rollback", "customer_needs", "--to", BUNDLED_VERSION, "--store", store
    )

    assert rolled.returncode == 0, rolled.stderr
    assert f"{newer} -> {BUNDLED_VERSION}" in rolled.stdout
    deadline = time.monotonic() + 20
    version = None
    while time.monotonic() < deadline and version != BUNDLED_VERSION:
        time.sleep(0.2)
        version = requests.post(server.url, json=ROW, timeout=30).headers["X-Model-Version"]
    assert version == BUNDLED_VERSION


@pytest.mark.parametrize(
    "command",
    [["publish", "customer_needs", "--to"], ["rollback", "customer_needs", "--to", "x", "--store"]],
)
def test_unreachable_store_fails_fast_with_a_message(gcs: FakeGcs, command: list[str]):
    dead = f"http://127.0.0.1:{free_port()}"
    process = subprocess.run(
        [sys.executable, "-m", "models", *command, "gs://nowhere/models"],
        cwd=REPO,
        env={**os.environ, "STORAGE_EMULATOR_HOST": dead, "STORAGE_TIMEOUT_SECONDS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert process.returncode == 1
    assert process.stderr.startswith("error: ")
    assert "Traceback" not in process.stderr
