"""Objects in data buckets: streamed reads and writes, and create-if-absent publishing.

The model store reads models; ObjectStore reads the files people upload and writes what is made
from them. Every call is bounded by the storage timeout and retried only where a retry is safe:
a single request within a deadline set before the client is made (so making it counts in the
first call's budget), a stream or a copy per request it makes.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.once import once
from shared.store._deadline import Deadline
from shared.store._errors import ObjectMissing
from shared.store._streams import READ_CHUNK_BYTES, WRITE_CHUNK_BYTES, StreamedUpload, read_ahead

if TYPE_CHECKING:
    from shared.store._cloud import Cloud


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    generation: int
    size: int
    metadata: Mapping[str, str]


class ObjectStore:
    """One Cloud Storage client per process, shared by every bucket and thread.

    The client library is imported when the store is first used, not before.
    """

    def __init__(self, timeout_seconds: float, emulator_host: str | None = None) -> None:
        self.timeout = timeout_seconds
        self.emulator_host = emulator_host
        self._cloud = once(self._connect)

    def info(self, bucket: str, name: str) -> ObjectInfo | None:
        """The live generation's size and custom metadata, or None when there is no object."""
        deadline, cloud = self._connected()
        handle = cloud.bucket(bucket)
        blob = cloud.within(
            deadline,
            f"stat {name}",
            lambda timeout: handle.get_blob(name, timeout=timeout, retry=None),
        )
        if blob is None:
            return None
        return ObjectInfo(
            name, int(blob.generation), int(blob.size or 0), dict(blob.metadata or {})
        )

    @contextmanager
    def reader(self, bucket: str, name: str, generation: int) -> Iterator[io.BufferedReader[Any]]:
        """That generation's bytes exactly as stored (no transcoding), fetched in ranges."""
        cloud = self._cloud()
        blob = cloud.bucket(bucket).blob(name, generation=generation)
        ranges = blob.open(
            "rb",
            chunk_size=READ_CHUNK_BYTES,
            retry=cloud.retry,
            raw_download=True,
            timeout=cloud.timeout,
        )
        stream = read_ahead(ranges, name, cloud)
        try:
            yield stream
        finally:
            stream.close()  # stops fetching ahead before the ranges close
            ranges.close()

    def writer(
        self, bucket: str, name: str, content_type: str, metadata: Mapping[str, str]
    ) -> StreamedUpload:
        """A streamed (resumable) upload: nothing exists at `name` until it is committed.

        `metadata` becomes the object's custom metadata, and follows it when it is copied.
        """
        cloud = self._cloud()
        blob = cloud.bucket(bucket).blob(name)
        blob.metadata = dict(metadata)
        upload = blob.open(
            "wb",
            chunk_size=WRITE_CHUNK_BYTES,
            ignore_flush=True,
            retry=cloud.retry,
            content_type=content_type,
            timeout=cloud.timeout,
        )
        return StreamedUpload(upload, name, cloud)

    def create_if_absent(self, bucket: str, name: str, data: bytes, content_type: str) -> None:
        """Write `data` at `name` only if nothing is there (if_generation_match=0)."""
        deadline, cloud = self._connected()
        blob = cloud.bucket(bucket).blob(name)
        cloud.within(
            deadline,
            f"write {name}",
            lambda timeout: blob.upload_from_string(
                data,
                content_type=content_type,
                if_generation_match=0,
                timeout=timeout,
                retry=None,
            ),
        )

    def copy_if_absent(self, bucket: str, source: str, destination: str) -> None:
        """Copy within the bucket, server side, only if nothing is at `destination`."""
        cloud = self._cloud()
        handle = cloud.bucket(bucket)
        target, origin = handle.blob(destination), handle.blob(source)

        def rewrite() -> None:
            token = None
            while True:
                token, _, _ = target.rewrite(
                    origin,
                    token=token,
                    if_generation_match=0,
                    timeout=cloud.timeout,
                    retry=cloud.retry,
                )
                if token is None:
                    return

        cloud.call(f"copy {source} to {destination}", rewrite)

    def delete(self, bucket: str, name: str) -> None:
        deadline, cloud = self._connected()
        blob = cloud.bucket(bucket).blob(name)
        try:
            cloud.within(
                deadline,
                f"delete {name}",
                lambda timeout: blob.delete(timeout=timeout, retry=None),
            )
        except ObjectMissing:
            return

    def _connected(self) -> tuple[Deadline, Cloud]:
        """A call's deadline, set before the client is made, and the client."""
        deadline = Deadline.after(self.timeout)
        return deadline, self._cloud()

    def _connect(self) -> Cloud:
        from shared.store._cloud import Cloud  # the client library, imported on first use

        return Cloud(self.timeout, self.emulator_host, "storage")
