"""Reading a model version: current.json, then checks, and only then unpickling.

An artifact is unpickled only after its sha256 matches current.json, and only when it was saved
by the scikit-learn version this process runs; the serving form in metadata.json is used only
when the metadata's sha256 matches too.

A load keeps one storage budget for all of its reads (see `Deadline`). What the caller is told
names the model, its version and the file at fault; the key and the store's location go with
the error's `where`, to the log only.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from shared.errors import ArtifactRejected, ModelNotFound
from shared.kernels import single_threaded
from shared.schema import ModelSchema
from shared.store._backends import Backend
from shared.store._deadline import Deadline
from shared.store._errors import ObjectMissing


@dataclass(eq=False)
class LoadedModel:
    """A verified model version. `serving` is its serving form (models/compile.py) when the
    metadata's sha256 matched too, else None. The pipeline is unpickled on first use: requests
    the serving form can answer never import scikit-learn."""

    name: str
    version: str
    sha256: str
    metadata: Mapping[str, Any]
    schema: ModelSchema
    artifact: bytes = field(repr=False)
    serving: Mapping[str, Any] | None = None
    _pipeline: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def pipeline(self) -> Any:
        with self._lock:
            if self._pipeline is None:
                self._pipeline = _unpickle(self.name, self.version, self.artifact)
                single_threaded()
            return self._pipeline


def load_current(backend: Backend, name: str, deadline: Deadline | None = None) -> LoadedModel:
    """Read current.json and verify what it names; unpickle only a verified artifact.

    Every read keeps to `deadline`: by default the store's budget from now, for the whole load.
    """
    deadline = deadline or backend.deadline()
    pointer = read_pointer(backend, name, deadline)
    version, expected_sha = pointer["version"], pointer["sha256"]
    folder, label = f"{name}/{version}", f"model {name} version {version}"
    metadata_bytes = read_file(
        backend, f"{folder}/metadata.json", f"{label} has no metadata.json", deadline
    )
    metadata = json_object(metadata_bytes, f"{label}: metadata.json", f"{folder}/metadata.json")
    _check_library_versions(name, version, metadata)
    artifact = read_file(
        backend, f"{folder}/model.joblib", f"{label} has no model.joblib", deadline
    )
    actual_sha = hashlib.sha256(artifact).hexdigest()
    if actual_sha != expected_sha or metadata.get("sha256") != expected_sha:
        raise ArtifactRejected(
            f"{label}: artifact sha256 does not match current.json; refusing to load it",
            where=f"{folder}/model.joblib",
        )
    trusted = pointer.get("metadata_sha256") == hashlib.sha256(metadata_bytes).hexdigest()
    model = LoadedModel(
        name=name,
        version=version,
        sha256=actual_sha,
        metadata=metadata,
        schema=_schema(name, version, metadata),
        artifact=artifact,
        serving=_serving(metadata) if trusted else None,
    )
    if model.serving is None:
        model.pipeline  # noqa: B018 (nothing else can answer: load it now, fail now)
    return model


def read_pointer(backend: Backend, name: str, deadline: Deadline | None = None) -> dict[str, str]:
    """current.json of `name`, checked; ModelNotFound when nothing is published."""
    key = f"{name}/current.json"
    data = read_file(backend, key, f"no model is published as {name}", deadline)
    pointer = json_object(data, f"model {name}: current.json", key)
    if not isinstance(pointer.get("version"), str) or not isinstance(pointer.get("sha256"), str):
        raise ArtifactRejected(
            f"model {name}: current.json must name a version and a sha256", where=key
        )
    if "/" in pointer["version"] or pointer["version"] in {"", ".", ".."}:
        raise ArtifactRejected(f"model {name}: current.json names an invalid version", where=key)
    fields = {"version": pointer["version"], "sha256": pointer["sha256"]}
    if isinstance(pointer.get("metadata_sha256"), str):
        fields["metadata_sha256"] = pointer["metadata_sha256"]
    return fields


def read_file(backend: Backend, key: str, missing: str, deadline: Deadline | None = None) -> bytes:
    """A file of the model store; ModelNotFound, telling the caller `missing`, when it is not
    there."""
    try:
        return backend.read(key, deadline)
    except ObjectMissing as exc:
        raise ModelNotFound(missing, where=f"{key} in {backend.location}") from exc


def json_object(data: bytes, label: str, key: str) -> dict[str, Any]:
    """`data` as a JSON object; ArtifactRejected naming it as `label` when it is not one."""
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ArtifactRejected(f"{label} is not valid JSON", where=key) from exc
    if not isinstance(document, dict):
        raise ArtifactRejected(f"{label} is not a JSON object", where=key)
    return document


def _serving(metadata: Mapping[str, Any]) -> Mapping[str, Any] | None:
    form = metadata.get("serving")
    return form if isinstance(form, dict) else None


def _schema(name: str, version: str, metadata: Mapping[str, Any]) -> ModelSchema:
    try:
        return ModelSchema.from_dict(metadata["schema"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactRejected(
            f"model {name} version {version}: metadata.json has no usable feature schema"
        ) from exc


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
