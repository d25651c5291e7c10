"""Copy a trained version from one model store to another, and move current.json."""

from __future__ import annotations

from typing import Any

import orjson

from shared.errors import ModelNotFound, PublishConflict
from shared.model_store import Backend, ObjectMissing, publish, read_pointer, set_current


def publish_version(
    source: Backend, destination: Backend, name: str, version: str | None
) -> tuple[str | None, str]:
    """Publish `version` (default: the source's current one); returns (previous, new) version.

    Re-running it is safe: a version already live is left alone, and one uploaded by an
    interrupted run is made live.
    """
    chosen = version or read_pointer(source, name)["version"]
    metadata = orjson.loads(source.read(f"{name}/{chosen}/metadata.json"))
    artifact = source.read(f"{name}/{chosen}/model.joblib")
    previous = current_version(destination, name)
    if previous == chosen:
        return previous, chosen
    try:
        publish(destination, name, chosen, artifact, metadata)
    except PublishConflict:
        if _uploaded_sha(destination, name, chosen) != metadata.get("sha256"):
            raise
        set_current(destination, name, chosen)
    return previous, chosen


def rollback(store: Backend, name: str, version: str) -> tuple[str | None, str]:
    previous = current_version(store, name)
    set_current(store, name, version)
    return previous, version


def current_version(store: Backend, name: str) -> str | None:
    try:
        return read_pointer(store, name)["version"]
    except ModelNotFound:
        return None


def _uploaded_sha(store: Backend, name: str, version: str) -> Any:
    try:
        return orjson.loads(store.read(f"{name}/{version}/metadata.json")).get("sha256")
    except ObjectMissing:
        return None
