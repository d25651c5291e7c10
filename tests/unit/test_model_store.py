from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import orjson
import pandas as pd
import pytest
import sklearn

from models.training import Trained
from shared.errors import (
    ArtifactRejected,
    ModelNotFound,
    ModelUnavailable,
    PublishConflict,
)
from shared.schema import CUSTOMER_NEEDS
from shared.store import (
    FAILURE_BACKOFF_SECONDS,
    Backend,
    Deadline,
    LoadedModel,
    LocalFolder,
    ModelStore,
    load_current,
    publish,
    set_current,
)

NAME = "customer_needs"
REFRESH = 60.0
SAMPLE = pd.DataFrame({"age": [30.0, 70.0], "gender": ["female", "other"], "income": [4e4, 1e5]})


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingLoader:
    """The real load_current, counting how often the store calls it."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, backend: Backend, name: str, deadline: Deadline) -> LoadedModel:
        with self._lock:
            self.calls += 1
        threading.Event().wait(self.delay)  # widen the window in which other threads pile up
        return load_current(backend, name, deadline)


class MakesMarker:
    """A pickle that, when loaded, creates a directory: proof that it was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return os.mkdir, (str(self.marker),)


@pytest.fixture
def store(tmp_path: Path) -> LocalFolder:
    return LocalFolder(tmp_path / "models")


def publish_trained(backend: LocalFolder, trained: Trained, version: str) -> dict[str, str]:
    metadata = {**trained.metadata, "version": version}
    return publish(backend, NAME, version, trained.artifact, metadata)


def pipeline_of(trained: Trained) -> Any:
    return joblib.load(io.BytesIO(trained.artifact))


def resign(backend: LocalFolder, version: str, metadata: dict[str, Any]) -> None:
    """Rewrite a version's metadata.json in place (what a careless publisher might do)."""
    path = backend.root / NAME / version / "metadata.json"
    path.write_bytes(orjson.dumps(metadata))


def metadata_sha256(store: LocalFolder, version: str) -> str:
    return hashlib.sha256((store.root / NAME / version / "metadata.json").read_bytes()).hexdigest()


# load_current


def test_load_current_returns_the_published_model(
    store: LocalFolder, customer_needs_v1: Trained
) -> None:
    pointer = publish_trained(store, customer_needs_v1, "v1")

    model = load_current(store, NAME)

    assert pointer == {
        "version": "v1",
        "sha256": customer_needs_v1.metadata["sha256"],
        "metadata_sha256": metadata_sha256(store, "v1"),
    }
    assert model.name == NAME
    assert model.version == "v1"
    assert model.sha256 == hashlib.sha256(customer_needs_v1.artifact).hexdigest()
    assert model.schema == CUSTOMER_NEEDS
    assert model.metadata["metrics"] == customer_needs_v1.metadata["metrics"]
    np.testing.assert_array_equal(
        model.pipeline.predict(SAMPLE), pipeline_of(customer_needs_v1).predict(SAMPLE)
    )


def test_publish_lays_out_the_documented_files(
    store: LocalFolder, customer_needs_v1: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")

    folder = store.root / NAME
    assert orjson.loads((folder / "current.json").read_bytes()) == {
        "version": "v1",
        "sha256": customer_needs_v1.metadata["sha256"],
        "metadata_sha256": metadata_sha256(store, "v1"),
    }
    assert (folder / "v1" / "model.joblib").read_bytes() == customer_needs_v1.artifact
    assert orjson.loads((folder / "v1" / "metadata.json").read_bytes())["version"] == "v1"
    assert not list(folder.rglob("*.tmp"))


def test_the_marker_pickle_does_create_its_marker_when_loaded(tmp_path: Path) -> None:
    # The control for the next test: this payload really runs code when unpickled.
    marker = tmp_path / "unpickled"

    joblib.load(io.BytesIO(pickle.dumps(MakesMarker(marker))))

    assert marker.exists()


def test_an_artifact_that_does_not_match_its_sha256_is_never_unpickled(
    store: LocalFolder, customer_needs_v1: Trained, tmp_path: Path
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    marker = tmp_path / "unpickled"
    (store.root / NAME / "v1" / "model.joblib").write_bytes(pickle.dumps(MakesMarker(marker)))

    with pytest.raises(ArtifactRejected, match=re.escape("sha256 does not match current.json")):
        load_current(store, NAME)

    assert not marker.exists()


def test_an_artifact_whose_metadata_was_re_signed_is_still_refused(
    store: LocalFolder, customer_needs_v1: Trained, tmp_path: Path
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(MakesMarker(marker))
    (store.root / NAME / "v1" / "model.joblib").write_bytes(payload)
    metadata = {**customer_needs_v1.metadata, "sha256": hashlib.sha256(payload).hexdigest()}
    resign(store, "v1", metadata)

    with pytest.raises(ArtifactRejected):
        load_current(store, NAME)

    assert not marker.exists()


def test_an_artifact_saved_by_another_scikit_learn_is_refused_with_a_clear_message(
    store: LocalFolder, customer_needs_v1: Trained, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    payload = pickle.dumps(MakesMarker(marker))
    metadata = {
        **customer_needs_v1.metadata,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "versions": {**customer_needs_v1.metadata["versions"], "scikit-learn": "0.24.2"},
    }
    publish(store, NAME, "v1", payload, metadata)

    with pytest.raises(ArtifactRejected) as caught:
        load_current(store, NAME)

    assert caught.value.message == (
        f"model {NAME} version v1 was saved with scikit-learn 0.24.2; "
        f"this function runs {sklearn.__version__}. Retrain or republish it with "
        f"scikit-learn {sklearn.__version__}."
    )
    assert not marker.exists()


def test_an_artifact_that_is_not_a_pickle_is_rejected(store: LocalFolder) -> None:
    artifact = b"not a pickle at all"
    metadata = {
        "sha256": hashlib.sha256(artifact).hexdigest(),
        "versions": {"scikit-learn": sklearn.__version__},
        "schema": CUSTOMER_NEEDS.to_dict(),
    }
    publish(store, NAME, "v1", artifact, metadata)

    with pytest.raises(ArtifactRejected, match="cannot be loaded"):
        load_current(store, NAME)


def test_nothing_published_is_model_not_found_and_says_where_for_the_log(
    store: LocalFolder,
) -> None:
    with pytest.raises(ModelNotFound) as caught:
        load_current(store, NAME)

    assert caught.value.message == f"no model is published as {NAME}"
    assert caught.value.where == f"{NAME}/current.json in {store.root}"
    assert (
        str(caught.value)
        == f"no model is published as {NAME} ({NAME}/current.json in {store.root})"
    )


def test_a_version_folder_that_is_missing_is_model_not_found(
    store: LocalFolder, customer_needs_v1: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    (store.root / NAME / "v1" / "model.joblib").unlink()

    with pytest.raises(ModelNotFound) as caught:
        load_current(store, NAME)

    assert caught.value.message == f"model {NAME} version v1 has no model.joblib"
    assert caught.value.where == f"{NAME}/v1/model.joblib in {store.root}"


@pytest.mark.parametrize(
    ("current", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b'["v1"]', "not a JSON object"),
        (b'{"version": "v1"}', "must name a version and a sha256"),
        (b'{"version": 1, "sha256": "ab"}', "must name a version and a sha256"),
        (b'{"version": "../v1", "sha256": "ab"}', "invalid version"),
        (b'{"version": "..", "sha256": "ab"}', "invalid version"),
        (b'{"version": "", "sha256": "ab"}', "invalid version"),
    ],
)
def test_an_invalid_current_json_is_rejected(
    store: LocalFolder, customer_needs_v1: Trained, current: bytes, reason: str
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    (store.root / NAME / "current.json").write_bytes(current)

    with pytest.raises(ArtifactRejected, match=reason):
        load_current(store, NAME)


def test_errors_of_the_store_are_all_model_unavailable() -> None:
    assert issubclass(ModelNotFound, ModelUnavailable)
    assert issubclass(ArtifactRejected, ModelUnavailable)
    assert ArtifactRejected("x").status == 503


# ModelStore.get


def test_get_loads_once_for_fifty_concurrent_threads(
    store: LocalFolder, customer_needs_v1: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    loader = CountingLoader(delay=0.05)
    models = ModelStore(store, REFRESH, loader=loader)
    start = threading.Barrier(50)
    results: list[LoadedModel] = []

    def ask() -> None:
        start.wait()
        results.append(models.get(NAME))

    threads = [threading.Thread(target=ask) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert loader.calls == 1
    assert len(results) == 50
    assert all(model is results[0] for model in results)
    assert models.loaded(NAME) is results[0]


def test_get_serves_from_memory_until_the_refresh_interval(
    store: LocalFolder, customer_needs_v1: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    loader, clock = CountingLoader(), Clock()
    models = ModelStore(store, REFRESH, loader=loader, clock=clock)
    first = models.get(NAME)
    (store.root / NAME / "current.json").unlink()  # any storage read would now fail
    clock.now += REFRESH - 0.001

    again = models.get(NAME)

    assert again is first
    assert loader.calls == 1


def test_loaded_never_touches_storage(store: LocalFolder) -> None:
    models = ModelStore(store, REFRESH, loader=CountingLoader())

    assert models.loaded(NAME) is None


def test_refresh_after_the_interval_picks_up_a_new_version(
    store: LocalFolder, customer_needs_v1: Trained, customer_needs_v2: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    loader, clock = CountingLoader(), Clock()
    models = ModelStore(store, REFRESH, loader=loader, clock=clock)
    assert models.get(NAME).version == "v1"
    publish_trained(store, customer_needs_v2, "v2")
    assert models.get(NAME).version == "v1"
    clock.now += REFRESH

    model = models.get(NAME)

    assert model.version == "v2"
    assert model.sha256 == customer_needs_v2.metadata["sha256"]
    np.testing.assert_array_equal(
        model.pipeline.predict(SAMPLE), pipeline_of(customer_needs_v2).predict(SAMPLE)
    )
    assert loader.calls == 2


def test_refresh_does_not_reload_an_unchanged_version(
    store: LocalFolder, customer_needs_v1: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    loader, clock = CountingLoader(), Clock()
    models = ModelStore(store, REFRESH, loader=loader, clock=clock)
    first = models.get(NAME)
    clock.now += REFRESH * 3

    assert models.get(NAME) is first
    assert loader.calls == 1


@pytest.mark.parametrize(
    "break_store",
    [
        lambda root: (root / NAME / "current.json").write_bytes(b"{broken"),
        lambda root: (root / NAME / "current.json").unlink(),
        lambda root: (root / NAME / "current.json").write_bytes(
            b'{"version": "v9", "sha256": "00"}'
        ),
    ],
    ids=["invalid-pointer", "pointer-deleted", "pointer-to-nothing"],
)
def test_a_refresh_that_fails_keeps_serving_the_loaded_model(
    store: LocalFolder,
    customer_needs_v1: Trained,
    capsys: pytest.CaptureFixture[str],
    break_store: Callable[[Path], object],
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    clock = Clock()
    models = ModelStore(store, REFRESH, clock=clock)
    first = models.get(NAME)
    break_store(store.root)
    clock.now += REFRESH
    capsys.readouterr()

    served = models.get(NAME)

    assert served is first
    entries = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    [warning] = [entry for entry in entries if entry["severity"] == "WARNING"]
    assert warning["message"] == "model refresh failed; serving the loaded version"
    assert warning["model"] == NAME
    assert warning["version"] == "v1"


def test_a_refresh_that_finds_a_tampered_artifact_keeps_serving(
    store: LocalFolder, customer_needs_v1: Trained, customer_needs_v2: Trained, tmp_path: Path
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    clock = Clock()
    models = ModelStore(store, REFRESH, clock=clock)
    first = models.get(NAME)
    publish_trained(store, customer_needs_v2, "v2")
    marker = tmp_path / "unpickled"
    (store.root / NAME / "v2" / "model.joblib").write_bytes(pickle.dumps(MakesMarker(marker)))
    clock.now += REFRESH

    served = models.get(NAME)

    assert served is first
    assert not marker.exists()


def test_a_refresh_that_finds_malformed_metadata_keeps_serving(
    store: LocalFolder, customer_needs_v1: Trained, customer_needs_v2: Trained
) -> None:
    # A publisher wrote a version whose metadata has the right sha256 and versions but no
    # schema: the new version cannot be served, the loaded one still can.
    publish_trained(store, customer_needs_v1, "v1")
    clock = Clock()
    models = ModelStore(store, REFRESH, clock=clock)
    first = models.get(NAME)
    metadata = {key: value for key, value in customer_needs_v2.metadata.items() if key != "schema"}
    publish(store, NAME, "v2", customer_needs_v2.artifact, metadata)
    clock.now += REFRESH

    served = models.get(NAME)

    assert served is first


def test_a_failed_refresh_is_retried_only_after_another_interval(
    store: LocalFolder, customer_needs_v1: Trained, customer_needs_v2: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    clock = Clock()
    models = ModelStore(store, REFRESH, clock=clock)
    models.get(NAME)
    current = store.root / NAME / "current.json"
    good_pointer = current.read_bytes()
    current.write_bytes(b"{broken")
    clock.now += REFRESH
    models.get(NAME)
    current.write_bytes(good_pointer)
    publish_trained(store, customer_needs_v2, "v2")

    clock.now += REFRESH - 1
    assert models.get(NAME).version == "v1"
    clock.now += 1
    assert models.get(NAME).version == "v2"


def test_a_failed_first_load_is_cached_for_the_backoff(
    store: LocalFolder, customer_needs_v1: Trained
) -> None:
    loader, clock = CountingLoader(), Clock()
    models = ModelStore(store, REFRESH, loader=loader, clock=clock)
    with pytest.raises(ModelNotFound) as first_failure:
        models.get(NAME)
    publish_trained(store, customer_needs_v1, "v1")
    clock.now += FAILURE_BACKOFF_SECONDS * 0.99

    with pytest.raises(ModelNotFound) as cached_failure:
        models.get(NAME)

    assert cached_failure.value is first_failure.value
    assert loader.calls == 1
    clock.now += FAILURE_BACKOFF_SECONDS * 0.01
    assert models.get(NAME).version == "v1"
    assert loader.calls == 2


def test_a_failed_first_load_is_logged_as_an_error(
    store: LocalFolder, capsys: pytest.CaptureFixture[str]
) -> None:
    models = ModelStore(store, REFRESH, clock=Clock())

    with pytest.raises(ModelNotFound):
        models.get(NAME)

    [entry] = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert entry["severity"] == "ERROR"
    assert entry["message"] == "model load failed"
    assert entry["model"] == NAME


def test_models_are_loaded_and_cached_by_name(
    store: LocalFolder, customer_needs_v1: Trained, market_trend_v1: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    publish(store, "market_trend", "v1", market_trend_v1.artifact, market_trend_v1.metadata)
    loader = CountingLoader()
    models = ModelStore(store, REFRESH, loader=loader)

    customer, market = models.get(NAME), models.get("market_trend")

    assert (customer.name, market.name) == (NAME, "market_trend")
    assert models.get(NAME) is customer
    assert loader.calls == 2


class RecordingFolder(LocalFolder):
    """A real folder that notes each deadline it makes and the deadline of each read."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.made: list[Deadline] = []
        self.reads: list[tuple[str, Deadline | None]] = []

    def deadline(self) -> Deadline:
        self.made.append(super().deadline())
        return self.made[-1]

    def read(self, key: str, deadline: Deadline | None = None) -> bytes:
        self.reads.append((key, deadline))
        return super().read(key, deadline)


def test_a_load_keeps_one_deadline_for_all_of_its_reads(
    store: LocalFolder, customer_needs_v1: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    recording = RecordingFolder(store.root)

    ModelStore(recording, REFRESH).get(NAME)

    [deadline] = recording.made
    assert [key for key, _ in recording.reads] == [
        f"{NAME}/current.json",
        f"{NAME}/v1/metadata.json",
        f"{NAME}/v1/model.joblib",
    ]
    assert all(read_deadline is deadline for _, read_deadline in recording.reads)


def test_a_refresh_check_and_the_load_it_leads_to_keep_one_deadline(
    store: LocalFolder, customer_needs_v1: Trained, customer_needs_v2: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    recording, clock = RecordingFolder(store.root), Clock()
    models = ModelStore(recording, REFRESH, clock=clock)
    models.get(NAME)
    publish_trained(store, customer_needs_v2, "v2")
    clock.now += REFRESH
    recording.made.clear()
    recording.reads.clear()

    assert models.get(NAME).version == "v2"

    [deadline] = recording.made
    assert len(recording.reads) == 4  # current.json, then v2's metadata.json and model.joblib
    assert all(read_deadline is deadline for _, read_deadline in recording.reads)


# publish and set_current


def test_publish_refuses_to_overwrite_an_existing_version(
    store: LocalFolder, customer_needs_v1: Trained, customer_needs_v2: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")

    with pytest.raises(PublishConflict, match=re.escape("version v1: model.joblib already exists")):
        publish(store, NAME, "v1", customer_needs_v2.artifact, customer_needs_v2.metadata)

    assert (store.root / NAME / "v1" / "model.joblib").read_bytes() == customer_needs_v1.artifact
    assert load_current(store, NAME).sha256 == customer_needs_v1.metadata["sha256"]


def test_publish_refuses_metadata_that_does_not_describe_the_artifact(
    store: LocalFolder, customer_needs_v1: Trained, customer_needs_v2: Trained
) -> None:
    with pytest.raises(ValueError, match="metadata sha256 does not describe the artifact"):
        publish(store, NAME, "v1", customer_needs_v2.artifact, customer_needs_v1.metadata)

    assert not (store.root / NAME).exists()


def test_set_current_can_roll_back_to_an_earlier_version(
    store: LocalFolder, customer_needs_v1: Trained, customer_needs_v2: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    publish_trained(store, customer_needs_v2, "v2")

    pointer = set_current(store, NAME, "v1")

    assert pointer == {
        "version": "v1",
        "sha256": customer_needs_v1.metadata["sha256"],
        "metadata_sha256": metadata_sha256(store, "v1"),
    }
    assert load_current(store, NAME).version == "v1"


class RacingFolder(LocalFolder):
    """A real folder where another publisher moves current.json right after we read it."""

    def __init__(self, root: Path, other_publisher: Callable[[], object]) -> None:
        super().__init__(root)
        self.other_publisher: Callable[[], object] | None = other_publisher

    def generation(self, key: str) -> int:
        generation = super().generation(key)
        if key.endswith("current.json") and self.other_publisher is not None:
            other_publisher, self.other_publisher = self.other_publisher, None
            other_publisher()
        return generation


def test_set_current_with_a_stale_generation_is_a_conflict(
    store: LocalFolder, customer_needs_v1: Trained, customer_needs_v2: Trained
) -> None:
    publish_trained(store, customer_needs_v1, "v1")
    publish(store, NAME, "v2", customer_needs_v2.artifact, {**customer_needs_v2.metadata})
    current = store.root / NAME / "current.json"
    an_hour_ago = current.stat().st_mtime_ns - 3600 * 10**9
    os.utime(current, ns=(an_hour_ago, an_hour_ago))  # v2 went live long before this test
    racing = RacingFolder(store.root, lambda: set_current(LocalFolder(store.root), NAME, "v1"))

    with pytest.raises(PublishConflict, match=re.escape("current.json changed while publishing")):
        set_current(racing, NAME, "v2")

    assert load_current(store, NAME).version == "v1"
