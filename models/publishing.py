"""Copy a trained version from one model store to another, and move current.json."""

from __future__ import annotations

import orjson

from shared.store import Backend, live_pointer, read_pointer, set_current, upload_version


def publish_version(
    source: Backend, destination: Backend, name: str, version: str | None
) -> tuple[str | None, str]:
    """Publish `version` (default: the source's current one); returns (previous, new) version.

    current.json moves only from the version read at the start: if another publisher moved it
    meanwhile, this one fails with PublishConflict and nothing it did is live. Re-running is
    safe: a version already live is left alone, and one uploaded by an interrupted run is
    reused.
    """
    chosen = version or read_pointer(source, name)["version"]
    metadata = orjson.loads(source.read(f"{name}/{chosen}/metadata.json"))
    artifact = source.read(f"{name}/{chosen}/model.joblib")
    pointer, generation = live_pointer(destination, name)
    previous = pointer["version"] if pointer else None
    if previous == chosen:
        return previous, chosen
    upload_version(destination, name, chosen, artifact, metadata)
    set_current(destination, name, chosen, generation)
    return previous, chosen


def rollback(store: Backend, name: str, version: str) -> tuple[str | None, str]:
    pointer, generation = live_pointer(store, name)
    set_current(store, name, version, generation)
    return (pointer["version"] if pointer else None), version
