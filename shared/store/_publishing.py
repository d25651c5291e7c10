"""Writing model versions: upload a version folder, then move current.json under a precondition.

Versions are never overwritten, and current.json moves only from the generation the writer
decided on, so two publishers at once cannot silently undo each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from shared.errors import ModelNotFound, PublishConflict
from shared.store._backends import Backend
from shared.store._errors import PreconditionFailed
from shared.store._loading import json_object, read_file, read_pointer


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
    label = f"model {name} version {version}"
    for file, data in (
        ("model.joblib", artifact),
        ("metadata.json", orjson.dumps(metadata) + b"\n"),
    ):
        key = f"{name}/{version}/{file}"
        try:
            backend.write(key, data, if_generation_match=0)
        except PreconditionFailed as exc:
            if read_file(backend, key, f"{label}: {file} vanished while publishing") != data:
                raise PublishConflict(
                    f"{label}: {file} already exists with other content; "
                    "versions are never overwritten",
                    where=f"{key} in {backend.location}",
                ) from exc


def set_current(
    backend: Backend, name: str, version: str, expected_generation: int | None = None
) -> dict[str, str]:
    """Point current.json at an uploaded version; refused if another writer moved it first.

    `expected_generation` is the current.json generation the caller decided on (0: none);
    by default the one there now.
    """
    key = f"{name}/{version}/metadata.json"
    metadata_bytes = read_file(backend, key, f"model {name} has no version {version}")
    metadata = json_object(metadata_bytes, f"model {name} version {version}: metadata.json", key)
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
        raise PublishConflict(
            f"model {name}: current.json changed while publishing; try again",
            where=f"{name}/current.json in {backend.location}",
        ) from exc
    return pointer
