"""The model store: the only code that reads or writes model artifacts.

Layout, the same in a local folder and under gs://bucket/prefix:

    <model>/current.json               {"version", "sha256", "metadata_sha256"}: the live version
    <model>/<version>/model.joblib     the scikit-learn Pipeline
    <model>/<version>/metadata.json    schema, metrics, versions, sha256, serving form

An artifact is unpickled only after its sha256 matches current.json, and only when it was saved
by the scikit-learn version this process runs; the serving form in metadata.json is used only
when the metadata's sha256 matches too. `ModelStore.get` loads each model once per process,
however many threads ask at once, then checks current.json every refresh interval and swaps in
a new version while the old one keeps serving.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from shared.compiled_model import CompiledModel
from shared.errors import (
    ArtifactRejected,
    ModelNotFound,
    ModelUnavailable,
    PublishConflict,
    StorageUnavailable,
)
from shared.kernels import single_threaded
from shared.logs import log
from shared.schema import ModelSchema

FAILURE_BACKOFF_SECONDS = 1.0


class ObjectMissing(Exception):
    """No object at that key, or not at that generation any more.

    Loading a model turns it into ModelNotFound (503).
    """


class PreconditionFailed(Exception):
    """A generation precondition failed: a create-if-absent found an object at the key, or
    another writer moved it first. Publishing turns it into PublishConflict (409)."""


class Backend(Protocol):
    location: str

    def read(self, key: str) -> bytes: ...

    def generation(self, key: str) -> int:
        """The object's generation; 0 when there is none."""
        ...

    def write(self, key: str, data: bytes, *, if_generation_match: int | None) -> None: ...


@dataclass(eq=False)
class LoadedModel:
    """A verified model version. The pipeline is unpickled on first use: requests the serving
    form can answer never import scikit-learn."""

    name: str
    version: str
    sha256: str
    metadata: Mapping[str, Any]
    schema: ModelSchema
    artifact: bytes = field(repr=False)
    compiled: CompiledModel | None = None
    _pipeline: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def pipeline(self) -> Any:
        with self._lock:
            if self._pipeline is None:
                self._pipeline = _unpickle(self.name, self.version, self.artifact)
                single_threaded()
            return self._pipeline


def open_backend(
    location: str, timeout_seconds: float, emulator_host: str | None = None
) -> Backend:
    """A local folder, or Cloud Storage for `gs://bucket/prefix`."""
    if location.startswith("gs://"):
        bucket, _, prefix = location.removeprefix("gs://").partition("/")
        if not bucket:
            raise ValueError(f"MODEL_STORE {location!r} names no bucket")
        from shared.gcs import GcsBucket  # Cloud Storage client imports only when it is used.

        return GcsBucket(bucket, prefix, timeout_seconds, emulator_host)
    return LocalFolder(Path(location))


class LocalFolder:
    """A folder on disk. Generations are modification times: fine for one publisher at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = str(root)

    def read(self, key: str) -> bytes:
        try:
            return (self.root / key).read_bytes()
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectMissing(key) from exc
        except OSError as exc:
            raise StorageUnavailable(f"cannot read {key} from {self.location}") from exc

    def generation(self, key: str) -> int:
        try:
            return (self.root / key).stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def write(self, key: str, data: bytes, *, if_generation_match: int | None) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if if_generation_match is not None and self.generation(key) != if_generation_match:
            raise PreconditionFailed(key)
        staging = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
        staging.write_bytes(data)
        staging.replace(path)


def load_current(backend: Backend, name: str) -> LoadedModel:
    """Read current.json and verify what it names; unpickle only a verified artifact."""
    pointer = read_pointer(backend, name)
    version, expected_sha = pointer["version"], pointer["sha256"]
    metadata_bytes = _read(backend, f"{name}/{version}/metadata.json")
    metadata = _json_object(metadata_bytes, f"{name}/{version}/metadata.json")
    _check_library_versions(name, version, metadata)
    artifact = _read(backend, f"{name}/{version}/model.joblib")
    actual_sha = hashlib.sha256(artifact).hexdigest()
    if actual_sha != expected_sha or metadata.get("sha256") != expected_sha:
        raise ArtifactRejected(
            f"model {name} version {version}: artifact sha256 does not match current.json; "
            "refusing to load it"
        )
    trusted = pointer.get("metadata_sha256") == hashlib.sha256(metadata_bytes).hexdigest()
    model = LoadedModel(
        name=name,
        version=version,
        sha256=actual_sha,
        metadata=metadata,
        schema=_schema(name, version, metadata),
        artifact=artifact,
        compiled=_compiled(metadata) if trusted else None,
    )
    if model.compiled is None:
        model.pipeline  # noqa: B018 (nothing else can answer: load it now, fail now)
    return model


def _compiled(metadata: Mapping[str, Any]) -> CompiledModel | None:
    form = metadata.get("serving")
    if not isinstance(form, dict):
        return None
    try:
        return CompiledModel(form)
    except (KeyError, TypeError, ValueError):
        return None


def _schema(name: str, version: str, metadata: Mapping[str, Any]) -> ModelSchema:
    try:
        return ModelSchema.from_dict(metadata["schema"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactRejected(
            f"model {name} version {version}: metadata.json has no usable feature schema"
        ) from exc


def read_pointer(backend: Backend, name: str) -> dict[str, str]:
    pointer = _read_json(backend, f"{name}/current.json")
    if not isinstance(pointer.get("version"), str) or not isinstance(pointer.get("sha256"), str):
        raise ArtifactRejected(f"model {name}: current.json must name a version and a sha256")
    if "/" in pointer["version"] or pointer["version"] in {"", ".", ".."}:
        raise ArtifactRejected(f"model {name}: current.json names an invalid version")
    fields = {"version": pointer["version"], "sha256": pointer["sha256"]}
    if isinstance(pointer.get("metadata_sha256"), str):
        fields["metadata_sha256"] = pointer["metadata_sha256"]
    return fields


def _check_library_versions(name: str, version: str, metadata: Mapping[str, Any]) -> None:
    installed = importlib.metadata.version("scikit-learn")  # without importing it
    versions = metadata.get("versions")
    saved_with = versions.get("scikit-learn") if isinstance(versions, dict) else None
    if saved_with != installed:
        raise ArtifactRejected(
            f"model {name} version {version} was saved with scikit-learn {saved_with}; "
            f"this function runs {installed}. Retrain or republish it with "
            f"scikit-learn {installed}."
        )


def _unpickle(name: str, version: str, artifact: bytes) -> Any:
    import joblib
    from sklearn.exceptions import InconsistentVersionWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", InconsistentVersionWarning)
            return joblib.load(io.BytesIO(artifact))
    except Exception as exc:
        raise ArtifactRejected(f"model {name} version {version} cannot be loaded") from exc


def _read(backend: Backend, key: str) -> bytes:
    try:
        return backend.read(key)
    except ObjectMissing as exc:
        raise ModelNotFound(f"nothing at {key} in the model store {backend.location}") from exc


def _read_json(backend: Backend, key: str) -> dict[str, Any]:
    return _json_object(_read(backend, key), key)


def _json_object(data: bytes, key: str) -> dict[str, Any]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ArtifactRejected(f"{key} in the model store is not valid JSON") from exc
    if not isinstance(document, dict):
        raise ArtifactRejected(f"{key} in the model store is not a JSON object")
    return document


@dataclass
class _Slot:
    lock: threading.Lock
    refreshing: threading.Lock
    model: LoadedModel | None = None
    next_check: float = 0.0
    failure: ModelUnavailable | None = None
    failure_until: float = 0.0


class ModelStore:
    """Models loaded once per process and refreshed from current.json without a restart."""

    def __init__(
        self,
        backend: Backend,
        refresh_seconds: float,
        *,
        loader: Callable[[Backend, str], LoadedModel] = load_current,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.refresh_seconds = refresh_seconds
        self._loader = loader
        self._clock = clock
        self._slots: dict[str, _Slot] = {}
        self._slots_lock = threading.Lock()

    def get(self, name: str) -> LoadedModel:
        slot = self._slot(name)
        model = slot.model
        if model is None:
            return self._first_load(name, slot)
        if self._clock() >= slot.next_check and slot.refreshing.acquire(blocking=False):
            try:
                self._refresh(name, slot, model)
            finally:
                slot.refreshing.release()
        return slot.model or model

    def loaded(self, name: str) -> LoadedModel | None:
        """The model if it is already in memory; never touches storage."""
        slot = self._slots.get(name)
        return slot.model if slot else None

    def _slot(self, name: str) -> _Slot:
        with self._slots_lock:
            return self._slots.setdefault(name, _Slot(threading.Lock(), threading.Lock()))

    def _first_load(self, name: str, slot: _Slot) -> LoadedModel:
        with slot.lock:
            if slot.model is not None:
                return slot.model
            if slot.failure is not None and self._clock() < slot.failure_until:
                raise slot.failure
            try:
                slot.model = self._load(name)
            except ModelUnavailable as exc:
                slot.failure, slot.failure_until = exc, self._clock() + FAILURE_BACKOFF_SECONDS
                raise
            slot.failure = None
            slot.next_check = self._clock() + self.refresh_seconds
            return slot.model

    def _refresh(self, name: str, slot: _Slot, model: LoadedModel) -> None:
        slot.next_check = self._clock() + self.refresh_seconds
        try:
            pointer = read_pointer(self.backend, name)
            if (pointer["version"], pointer["sha256"]) == (model.version, model.sha256):
                return
            slot.model = self._load(name)
        except ModelUnavailable as exc:
            log(
                "WARNING",
                "model refresh failed; serving the loaded version",
                model=name,
                version=model.version,
                error=exc.message,
            )

    def _load(self, name: str) -> LoadedModel:
        started = time.perf_counter()
        try:
            model = self._loader(self.backend, name)
        except ModelUnavailable as exc:
            log("ERROR", "model load failed", model=name, error=exc.message)
            raise
        log(
            "INFO",
            "model loaded",
            model=name,
            version=model.version,
            sha256=model.sha256,
            seconds=round(time.perf_counter() - started, 3),
            store=self.backend.location,
        )
        return model


def publish(
    backend: Backend, name: str, version: str, artifact: bytes, metadata: Mapping[str, Any]
) -> dict[str, str]:
    """Upload a new version folder, then point current.json at it under a precondition."""
    generation = backend.generation(f"{name}/current.json")
    upload_version(backend, name, version, artifact, metadata)
    return set_current(backend, name, version, generation)


def live_pointer(backend: Backend, name: str) -> tuple[dict[str, str] | None, int]:
    """current.json (None if absent) and the generation to write the next one against.

    The generation is read first: if the pointer moves after that, the next write fails
    instead of silently replacing a version this reader never saw.
    """
    generation = backend.generation(f"{name}/current.json")
    if generation == 0:
        return None, 0
    try:
        return read_pointer(backend, name), generation
    except ModelNotFound:
        return None, generation


def upload_version(
    backend: Backend, name: str, version: str, artifact: bytes, metadata: Mapping[str, Any]
) -> None:
    """Write a version folder; files already there are fine only if they are identical."""
    sha256 = hashlib.sha256(artifact).hexdigest()
    if metadata.get("sha256") != sha256:
        raise ValueError("metadata sha256 does not describe the artifact")
    for key, data in (
        (f"{name}/{version}/model.joblib", artifact),
        (f"{name}/{version}/metadata.json", orjson.dumps(metadata) + b"\n"),
    ):
        try:
            backend.write(key, data, if_generation_match=0)
        except PreconditionFailed as exc:
            if _read(backend, key) != data:
                raise PublishConflict(
                    f"{key} already exists with other content; versions are never overwritten"
                ) from exc


def set_current(
    backend: Backend, name: str, version: str, expected_generation: int | None = None
) -> dict[str, str]:
    """Point current.json at an uploaded version; refused if another writer moved it first.

    `expected_generation` is the current.json generation the caller decided on (0: none);
    by default the one there now.
    """
    metadata_bytes = _read(backend, f"{name}/{version}/metadata.json")
    metadata = _json_object(metadata_bytes, f"{name}/{version}/metadata.json")
    pointer = {
        "version": version,
        "sha256": str(metadata["sha256"]),
        "metadata_sha256": hashlib.sha256(metadata_bytes).hexdigest(),
    }
    if expected_generation is None:
        expected_generation = backend.generation(f"{name}/current.json")
    try:
        backend.write(
            f"{name}/current.json",
            orjson.dumps(pointer, option=orjson.OPT_INDENT_2) + b"\n",
            if_generation_match=expected_generation,
        )
    except PreconditionFailed as exc:
        raise PublishConflict(f"{name}/current.json changed while publishing; try again") from exc
    return pointer
