"""An uploaded CSV file's rows, in chunks of columns, each row with the physical line it starts on.

Text is decoded in blocks of whole lines. A block without quotes, NULs or lone carriage returns
(nearly every block of nearly every file) is split with str methods, which reads exactly what
the csv module would, at a fraction of the cost, and keeps each row's text as written. Other
blocks go through one csv.reader that lives as long as the file, so a quoted field may span
blocks; either way the rows and their line numbers are the csv module's.

Lines end with CRLF, LF or CR; header = line 1, and newlines inside quoted fields count.
Blank lines are not rows.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, cast

BLOCK_BYTES = 1 << 20
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


class NotUtf8(ValueError):
    def __init__(self, line: int) -> None:
        super().__init__(f"invalid UTF-8 near line {line}")
        self.line = line


class NotCsv(ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"invalid CSV at line {line}: {reason}")
        self.line = line
        self.reason = reason


@dataclass
class Chunk:
    """Rows kept by column, so that no object per row outlives its line.

    `lines` and `columns` hold the rows with as many fields as the header; `ragged` the others.
    `text` holds each of those rows as written, when every one was plain (no quotes).
    """

    lines: list[int]
    columns: list[list[str]]
    ragged: list[tuple[int, list[str]]] = field(default_factory=list)
    text: list[str] | None = None

    def __len__(self) -> int:
        return len(self.lines) + len(self.ragged)


@dataclass(frozen=True)
class _Plain:
    first_line: int
    lines: list[str]  # without line ends; blank lines included


@dataclass(frozen=True)
class _Parsed:
    line: int
    cells: list[str]


class CsvFile:
    """One pass over a file: `header()`, then `chunks()`."""

    def __init__(self, source: io.BufferedReader[Any], block_bytes: int = BLOCK_BYTES) -> None:
        binary: IO[bytes] = source
        if source.peek(2)[:2] == b"\x1f\x8b":
            binary = cast(IO[bytes], gzip.GzipFile(fileobj=source, mode="rb"))
        self._binary = binary
        self._block_bytes = block_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._carry = ""
        self._eof = False
        self._line = 0  # physical lines consumed so far
        self._pending: deque[str] = deque()  # lines the csv reader has yet to read
        self._reader = csv.reader(self._reader_lines(), strict=True)
        self._rows = self._items()
        self._first: _Plain | None = None
        self.header_line = 0  # the line the header was found on

    @classmethod
    def of_text(cls, text: str) -> CsvFile:
        """A file already in memory and decoded, read as one block."""
        file = cls(io.BufferedReader(io.BytesIO(b"")))
        file._carry = text
        return file

    def header(self) -> list[str] | None:
        """The first row that is not blank; None when the file has none."""
        for item in self._rows:
            if isinstance(item, _Parsed):
                if item.cells:
                    self.header_line = item.line
                    return item.cells
                continue
            for offset, line in enumerate(item.lines):
                if line:
                    self.header_line = item.first_line + offset
                    self._first = _Plain(self.header_line + 1, item.lines[offset + 1 :])
                    return line.split(",")
        return None

    def chunks(self, width: int, size: int) -> Iterator[Chunk]:
        """The rows after the header, at most `size` lines' worth at a time."""
        items = self._rows if self._first is None else itertools.chain([self._first], self._rows)
        builder = _Builder(width)
        for item in items:
            if isinstance(item, _Parsed):
                builder.add_parsed(item.line, item.cells)
                if builder.consumed >= size:
                    yield from builder.take()
                continue
            start = 0
            while start < len(item.lines):
                part = item.lines[start : start + size - builder.consumed]
                builder.add_plain(item.first_line + start, part)
                start += len(part)
                if builder.consumed >= size:
                    yield from builder.take()
        yield from builder.take()

    def _items(self) -> Iterator[_Plain | _Parsed]:
        """Plain blocks whole, other rows one by one, in file order."""
        while True:
            if self._pending:  # the csv reader stopped inside a block: it reads on
                yield self._parsed_row()
                continue
            block = self._block()
            if block is None:
                return
            lines = _plain_lines(block)
            if lines is not None:
                yield _Plain(self._line + 1, lines)
                self._line += len(lines)
            else:
                self._pending.extend(_LINE.findall(block))

    def _parsed_row(self) -> _Parsed:
        start = self._line + 1
        try:
            cells = next(self._reader)
        except csv.Error as exc:
            raise NotCsv(self._line, str(exc)) from exc
        return _Parsed(start, cells)

    def _reader_lines(self) -> Iterator[str]:
        """The csv reader's source: pending lines, then whole blocks (a field spans blocks)."""
        while True:
            if not self._pending:
                block = self._block()
                if block is None:
                    return
                self._pending.extend(_LINE.findall(block))
            self._line += 1
            yield self._pending.popleft()

    def _block(self) -> str | None:
        """The next run of whole lines (the last may lack its line end); None at the end."""
        while not self._eof:
            data = self._binary.read(self._block_bytes)
            self._eof = not data
            try:
                text = self._carry + self._decoder.decode(data, final=self._eof)
            except UnicodeDecodeError as exc:  # the carry holds no whole line
                raise NotUtf8(self._line + exc.object[: exc.start].count(b"\n") + 1) from exc
            # Cut after the last line end; a CR at the very end may be half of a CRLF.
            end = max(text.rfind("\n"), text.rfind("\r", 0, len(text) - 1)) + 1
            if self._eof:
                end = len(text)
            self._carry = text[end:]
            if end:
                return text[:end]
        return None


class _Builder:
    def __init__(self, width: int) -> None:
        self.width = width
        self.consumed = 0
        self.chunk = self._empty()

    def _empty(self) -> Chunk:
        return Chunk(lines=[], columns=[[] for _ in range(self.width)], text=[])

    def add_plain(self, first_line: int, lines: list[str]) -> None:
        self.consumed += len(lines)
        chunk, width = self.chunk, self.width
        counts = list(map(str.count, lines, itertools.repeat(",")))
        if counts.count(width - 1) == len(lines) and (width > 1 or "" not in lines):
            cells = ",".join(lines).split(",")
            for position, column in enumerate(chunk.columns):
                column.extend(cells[position::width])
            chunk.lines.extend(range(first_line, first_line + len(lines)))
            if chunk.text is not None:
                chunk.text.extend(lines)
            return
        for offset, (line, count) in enumerate(zip(lines, counts, strict=True)):
            if not line:
                continue
            if count == width - 1:
                for column, cell in zip(chunk.columns, line.split(","), strict=True):
                    column.append(cell)
                chunk.lines.append(first_line + offset)
                if chunk.text is not None:
                    chunk.text.append(line)
            else:
                chunk.ragged.append((first_line + offset, line.split(",")))

    def add_parsed(self, line: int, cells: list[str]) -> None:
        self.consumed += 1
        if len(cells) == self.width:
            for column, cell in zip(self.chunk.columns, cells, strict=True):
                column.append(cell)
            self.chunk.lines.append(line)
            self.chunk.text = None  # a quoted row is written cell by cell
        elif cells:
            self.chunk.ragged.append((line, cells))

    def take(self) -> Iterator[Chunk]:
        if len(self.chunk):
            yield self.chunk
        self.chunk = self._empty()
        self.consumed = 0


def _plain_lines(block: str) -> list[str] | None:
    """The block's lines, when str.split reads them as the csv module would: no quotes, no
    NULs, every CR part of a CRLF, no line longer than the csv module's field limit."""
    if '"' in block or "\x00" in block:
        return None
    if "\r" in block:
        if block.count("\r") != block.count("\r\n"):
            return None
        block = block.replace("\r\n", "\n")
    lines = block.split("\n")
    if lines[-1] == "":  # the block ended with its line end
        lines.pop()
    if lines and max(map(len, lines)) > csv.field_size_limit():
        return None
    return lines
