"""Where model artifacts live: a local folder, or Cloud Storage under gs://bucket/prefix."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.once import once
from shared.store._errors import ObjectMissing, PreconditionFailed, unavailable

if TYPE_CHECKING:
    from shared.store._cloud import Cloud


MODEL_STORE = "the model store"  # how callers hear of it; its location goes to the log only


class Backend(Protocol):
    location: str

    def read(self, key: str) -> bytes: ...

    def generation(self, key: str) -> int:
        """The object's generation; 0 when there is none."""
        ...

    def write(self, key: str, data: bytes, *, if_generation_match: int | None) -> None: ...


def open_backend(
    location: str, timeout_seconds: float, emulator_host: str | None = None
) -> Backend:
    """A local folder, or Cloud Storage for `gs://bucket/prefix`."""
    if location.startswith("gs://"):
        bucket, _, prefix = location.removeprefix("gs://").partition("/")
        if not bucket:
            raise ValueError(f"MODEL_STORE {location!r} names no bucket")
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
            where = f"read {key} from {self.location}: {type(exc).__name__}"
            raise unavailable(MODEL_STORE, where) from exc

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


class GcsBucket:
    """Cloud Storage under gs://bucket/prefix: bounded reads, and writes with preconditions.

    The client library is imported when the bucket is first used, not before.
    """

    def __init__(
        self, bucket: str, prefix: str, timeout_seconds: float, emulator_host: str | None
    ) -> None:
        self.bucket_name = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.location = f"gs://{bucket}/{self.prefix}"
        self.timeout = timeout_seconds
        self.emulator_host = emulator_host
        self._cloud = once(self._connect)

    def read(self, key: str) -> bytes:
        cloud = self._cloud()
        data: bytes = cloud.call(
            f"read {key} from {self.location}",
            lambda: self._blob(cloud, key).download_as_bytes(
                timeout=cloud.timeout, retry=cloud.retry
            ),
        )
        return data

    def generation(self, key: str) -> int:
        cloud = self._cloud()
        blob = cloud.call(
            f"stat {key} in {self.location}",
            lambda: cloud.bucket(self.bucket_name).get_blob(
                self.prefix + key, timeout=cloud.timeout, retry=cloud.retry
            ),
            missing=False,
        )
        return int(blob.generation) if blob is not None else 0

    def write(self, key: str, data: bytes, *, if_generation_match: int | None) -> None:
        cloud = self._cloud()
        cloud.call(
            f"write {key} to {self.location}",
            lambda: self._blob(cloud, key).upload_from_string(
                data,
                content_type=_content_type(key),
                if_generation_match=if_generation_match,
                timeout=cloud.timeout,
                # Only a write with a precondition is safe to send twice.
                retry=cloud.retry if if_generation_match is not None else None,
            ),
            missing=False,  # a 404 here means the bucket is gone: storage failed
        )

    def _blob(self, cloud: Cloud, key: str) -> Any:
        return cloud.bucket(self.bucket_name).blob(self.prefix + key)

    def _connect(self) -> Cloud:
        from shared.store._cloud import Cloud  # the client library, imported on first use

        return Cloud(self.timeout, self.emulator_host, MODEL_STORE)


def _content_type(key: str) -> str:
    return "application/json" if key.endswith(".json") else "application/octet-stream"
