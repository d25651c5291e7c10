"""Where model artifacts live: a local folder, or Cloud Storage under gs://bucket/prefix."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.once import once
from shared.store._deadline import Deadline
from shared.store._errors import ObjectMissing, PreconditionFailed, unavailable

if TYPE_CHECKING:
    from shared.store._cloud import Cloud


MODEL_STORE = "the model store"  # how callers hear of it; its location goes to the log only


class Backend(Protocol):
    location: str

    def deadline(self) -> Deadline:
        """The storage budget from now, for one piece of work: a model load, a refresh check."""
        ...

    def read(self, key: str, deadline: Deadline | None = None) -> bytes:
        """The object's bytes, within `deadline` (by default a budget of its own)."""
        ...

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

    def deadline(self) -> Deadline:
        return Deadline.after(math.inf)  # a local read answers or fails at once

    def read(self, key: str, deadline: Deadline | None = None) -> bytes:
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

    def deadline(self) -> Deadline:
        return Deadline.after(self.timeout)

    def read(self, key: str, deadline: Deadline | None = None) -> bytes:
        deadline = deadline or self.deadline()  # set before the client is made: that counts
        cloud = self._cloud()
        blob = self._blob(cloud, key)
        data: bytes = cloud.within(
            deadline,
            f"read {key} from {self.location}",
            lambda timeout: blob.download_as_bytes(timeout=timeout, retry=None),
        )
        return data

    def generation(self, key: str) -> int:
        deadline = self.deadline()
        cloud = self._cloud()
        handle = cloud.bucket(self.bucket_name)
        blob = cloud.within(
            deadline,
            f"stat {key} in {self.location}",
            lambda timeout: handle.get_blob(self.prefix + key, timeout=timeout, retry=None),
            missing=False,
        )
        return int(blob.generation) if blob is not None else 0

    def write(self, key: str, data: bytes, *, if_generation_match: int | None) -> None:
        deadline = self.deadline()
        cloud = self._cloud()
        blob = self._blob(cloud, key)
        cloud.within(
            deadline,
            f"write {key} to {self.location}",
            lambda timeout: blob.upload_from_string(
                data,
                content_type=_content_type(key),
                if_generation_match=if_generation_match,
                timeout=timeout,
                retry=None,
            ),
            missing=False,  # a 404 here means the bucket is gone: storage failed
            # Only a write with a precondition is safe to send twice.
            retry=if_generation_match is not None,
        )

    def _blob(self, cloud: Cloud, key: str) -> Any:
        return cloud.bucket(self.bucket_name).blob(self.prefix + key)

    def _connect(self) -> Cloud:
        from shared.store._cloud import Cloud  # the client library, imported on first use

        return Cloud(self.timeout, self.emulator_host, MODEL_STORE)


def _content_type(key: str) -> str:
    return "application/json" if key.endswith(".json") else "application/octet-stream"
