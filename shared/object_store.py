"""Objects in data buckets: streamed reads and writes, and create-if-absent publishing.

The model store reads models; this module reads the files people upload and writes what is
made from them. Every call is bounded by the storage timeout and retried only where a retry is
safe. Failures surface as the model store's three exceptions:

    StorageUnavailable   storage did not answer or failed: retry the whole event later
    ObjectMissing        no such object (or no longer that generation)
    PreconditionFailed   a create-if-absent found an object at the name (HTTP 412)
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from shared.errors import StorageUnavailable
from shared.gcs import client
from shared.logs import log
from shared.model_store import ObjectMissing, PreconditionFailed

READ_CHUNK_BYTES = 2 * 1024 * 1024  # one range in hand and one ahead: memory stays flat
WRITE_CHUNK_BYTES = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require

_UNAVAILABLE = (
    api_exceptions.GoogleAPIError,
    auth_exceptions.GoogleAuthError,
    requests.exceptions.RequestException,
    OSError,
)

T = TypeVar("T")


@dataclass(frozen=True)
class ObjectInfo:
    name: str
    generation: int
    size: int
    metadata: Mapping[str, str]


class ObjectStore:
    """One Cloud Storage client per process, shared by every bucket and thread."""

    def __init__(self, timeout_seconds: float, emulator_host: str | None = None) -> None:
        self.timeout = timeout_seconds
        self.emulator_host = emulator_host
        self._client: storage.Client | None = None
        self._lock = threading.Lock()

    def info(self, bucket: str, name: str) -> ObjectInfo | None:
        """The live generation's size and custom metadata, or None when there is no object."""
        blob = self._call(
            f"stat {name}",
            lambda: self._bucket(bucket).get_blob(
                name, timeout=self._request_timeout(), retry=self._retry()
            ),
        )
        if blob is None:
            return None
        return ObjectInfo(
            name, int(blob.generation), int(blob.size or 0), dict(blob.metadata or {})
        )

    @contextmanager
    def reader(self, bucket: str, name: str, generation: int) -> Iterator[io.BufferedReader[Any]]:
        """That generation's bytes exactly as stored (no transcoding), fetched in ranges."""
        blob = self._bucket(bucket).blob(name, generation=generation)
        ranges = blob.open(
            "rb",
            chunk_size=READ_CHUNK_BYTES,
            retry=self._retry(),
            raw_download=True,
            timeout=self._request_timeout(),
        )
        stream = io.BufferedReader(_Translated(ranges, name), buffer_size=256 * 1024)
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
        blob = self._bucket(bucket).blob(name)
        blob.metadata = dict(metadata)
        upload = blob.open(
            "wb",
            chunk_size=WRITE_CHUNK_BYTES,
            ignore_flush=True,
            retry=self._retry(),
            content_type=content_type,
            timeout=self._request_timeout(),
        )
        return StreamedUpload(upload, name)

    def create_if_absent(self, bucket: str, name: str, data: bytes, content_type: str) -> None:
        """Write `data` at `name` only if nothing is there (if_generation_match=0)."""
        blob = self._bucket(bucket).blob(name)
        self._call(
            f"write {name}",
            lambda: blob.upload_from_string(
                data,
                content_type=content_type,
                if_generation_match=0,
                timeout=self._request_timeout(),
                retry=self._retry(),
            ),
        )

    def copy_if_absent(self, bucket: str, source: str, destination: str) -> None:
        """Copy within the bucket, server side, only if nothing is at `destination`."""
        handle = self._bucket(bucket)
        target, origin = handle.blob(destination), handle.blob(source)

        def rewrite() -> None:
            token = None
            while True:
                token, _, _ = target.rewrite(
                    origin,
                    token=token,
                    if_generation_match=0,
                    timeout=self._request_timeout(),
                    retry=self._retry(),
                )
                if token is None:
                    return

        self._call(f"copy {source} to {destination}", rewrite)

    def delete(self, bucket: str, name: str) -> None:
        blob = self._bucket(bucket).blob(name)
        try:
            self._call(
                f"delete {name}",
                lambda: blob.delete(timeout=self._request_timeout(), retry=self._retry()),
            )
        except ObjectMissing:
            return

    def _call(self, what: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except api_exceptions.PreconditionFailed as exc:
            raise PreconditionFailed(what) from exc
        except api_exceptions.NotFound as exc:
            raise ObjectMissing(what) from exc
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"cannot {what}: {type(exc).__name__}") from exc

    def _bucket(self, name: str) -> Any:
        return self._client_handle().bucket(name)

    def _client_handle(self) -> storage.Client:
        with self._lock:
            if self._client is None:
                self._client = client(self.emulator_host)
            return self._client

    def _request_timeout(self) -> tuple[float, float]:
        return (min(self.timeout, 3.0), self.timeout)

    def _retry(self) -> Retry:
        retry: Retry = DEFAULT_RETRY.with_timeout(self.timeout).with_delay(initial=0.1, maximum=1.0)
        return retry


class StreamedUpload:
    """Bytes go up in chunks as they are written; `commit` finalizes, `discard` cancels.

    Sending happens on a thread of its own, so the next chunk of output is made while the last
    one travels; at most two writes wait. A failure to send is raised by the next call.
    """

    def __init__(self, upload: Any, name: str) -> None:
        self._upload = upload
        self.name = name
        self._waiting: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
        self._failure: BaseException | None = None
        self._sender: threading.Thread | None = None  # started by the first write

    def write(self, data: bytes) -> None:
        self._raise_failure()
        if self._sender is None:
            self._sender = threading.Thread(
                target=self._send, name=f"upload {self.name}", daemon=True
            )
            self._sender.start()
        self._waiting.put(data)

    def commit(self) -> None:
        self._finish_sending()
        self._raise_failure()
        try:
            self._upload.close()
        except _UNAVAILABLE as exc:
            raise StorageUnavailable(f"cannot finish {self.name}: {type(exc).__name__}") from exc

    def discard(self) -> None:
        """Cancel the upload; best effort, since this runs while another error is on its way."""
        self._finish_sending()
        try:
            self._upload.terminate()
        except _UNAVAILABLE as exc:
            log("WARNING", "could not cancel a streamed upload", error=type(exc).__name__)

    def _send(self) -> None:
        while (data := self._waiting.get()) is not None:
            if self._failure is None:  # after a failure, drain: the writer learns of it
                try:
                    self._upload.write(data)
                except BaseException as exc:  # noqa: BLE001 (raised again by the writer)
                    self._failure = exc

    def _finish_sending(self) -> None:
        if self._sender is not None and self._sender.is_alive():
            self._waiting.put(None)
            self._sender.join()

    def _raise_failure(self) -> None:
        exc = self._failure
        if exc is None:
            return
        if isinstance(exc, _UNAVAILABLE):
            raise StorageUnavailable(f"cannot write {self.name}: {type(exc).__name__}") from exc
        raise exc


class _Translated(io.RawIOBase):
    """Ranged reads, fetched one range ahead on a thread of their own (so the next range
    travels while the last is scored), whose storage errors arrive as this module's exceptions.
    """

    def __init__(self, ranges: Any, name: str) -> None:
        self._ranges = ranges
        self._name = name
        self._ahead: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=1)
        self._closing = threading.Event()
        self._current = memoryview(b"")
        self._last: bytes | BaseException | None = None  # the end, or the failure, once seen
        self._fetcher = threading.Thread(target=self._fetch, name=f"read {name}", daemon=True)
        self._fetcher.start()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._current:
            item = self._last if self._last is not None else self._ahead.get()
            if isinstance(item, BaseException) or not item:
                self._last = item
                if isinstance(item, BaseException):
                    translated = self._translated(item)
                    if translated is item:
                        raise item
                    raise translated from item
                return 0
            self._current = memoryview(item)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        return count

    def close(self) -> None:
        self._closing.set()
        self._fetcher.join()
        super().close()

    def _fetch(self) -> None:
        while not self._closing.is_set():
            try:
                data = self._ranges.read(READ_CHUNK_BYTES)
            except BaseException as exc:  # noqa: BLE001 (raised by the reading thread)
                self._hand_over(exc)
                return
            self._hand_over(data)
            if not data:
                return

    def _hand_over(self, item: bytes | BaseException) -> None:
        while not self._closing.is_set():
            try:
                self._ahead.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _translated(self, exc: BaseException) -> BaseException:
        if isinstance(exc, api_exceptions.NotFound):
            return ObjectMissing(f"read {self._name}")
        if isinstance(exc, _UNAVAILABLE):
            return StorageUnavailable(f"cannot read {self._name}: {type(exc).__name__}")
        return exc
