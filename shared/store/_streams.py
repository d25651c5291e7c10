"""Streams to and from Cloud Storage that do their waiting on threads of their own.

An upload sends the last chunk while the next one is made; a download fetches the next range
while the last one is read. Either way, at most a couple of chunks are in memory.
"""

from __future__ import annotations

import io
import queue
import threading
from typing import TYPE_CHECKING, Any

from shared.errors import StorageUnavailable
from shared.logs import log

if TYPE_CHECKING:
    from shared.store._cloud import Cloud

READ_CHUNK_BYTES = 2 * 1024 * 1024  # one range in hand and one ahead: memory stays flat
WRITE_CHUNK_BYTES = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require


class StreamedUpload:
    """Bytes go up in chunks as they are written; `commit` finalizes, `discard` cancels.

    Sending happens on a thread of its own, so the next chunk of output is made while the last
    one travels; at most two writes wait. A failure to send is raised by the next call.
    """

    def __init__(self, upload: Any, name: str, cloud: Cloud) -> None:
        self._upload = upload
        self.name = name
        self._cloud = cloud
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
        # A 404 while uploading means the upload itself is gone: storage failed.
        self._cloud.call(f"finish {self.name}", self._upload.close, missing=False)

    def discard(self) -> None:
        """Cancel the upload; best effort, since this runs while another error is on its way."""
        self._finish_sending()
        try:
            self._cloud.call(f"cancel {self.name}", self._upload.terminate, missing=False)
        except StorageUnavailable as exc:
            log("WARNING", "could not cancel a streamed upload", error=str(exc))

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
        translated = self._cloud.translated(exc, f"write {self.name}", missing=False)
        if translated is exc:
            raise exc
        raise translated from exc


def read_ahead(ranges: Any, name: str, cloud: Cloud) -> io.BufferedReader[Any]:
    """A buffered reader over ranged reads (a BlobReader), fetching one range ahead."""
    return io.BufferedReader(_ReadAhead(ranges, name, cloud), buffer_size=256 * 1024)


class _ReadAhead(io.RawIOBase):
    """Ranged reads, fetched one range ahead on a thread of their own (so the next range
    travels while the last is scored), whose storage errors arrive as the store's errors.
    """

    def __init__(self, ranges: Any, name: str, cloud: Cloud) -> None:
        self._ranges = ranges
        self._name = name
        self._cloud = cloud
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
                    translated = self._cloud.translated(item, f"read {self._name}")
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
