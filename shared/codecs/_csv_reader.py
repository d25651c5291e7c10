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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from shared.codecs._csv_grid import Grid

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
    `text` holds each of those rows as written, when every one was plain (no quotes). Such a
    chunk may keep its `grid` instead: its cells are split only when `columns` is asked for.
    """

    lines: list[int]
    split: list[list[str]] | None  # None: not split yet, `text` holds the rows
    ragged: list[tuple[int, list[str]]] = field(default_factory=list)
    text: list[str] | None = None
    grid: Grid | None = None

    def __len__(self) -> int:
        return len(self.lines) + len(self.ragged)

    @property
    def columns(self) -> list[list[str]]:
        """The rows' cells by column, split from `text` on first use."""
        if self.split is None:
            assert self.text is not None
            assert self.grid is not None
            self.split = split_columns(self.text, self.grid.width)
        return self.split

    def column(self, at: int, numeric: bool = False) -> Sequence[Any]:
        """One column; from a grid, a `numeric` one as floats where it is plainly numbers (the
        values the clean check would read from its text), and no other column split."""
        if self.grid is None:
            return self.columns[at]
        from shared.codecs._csv_grid import numeric_or_text

        values: Sequence[Any] = numeric_or_text(self.grid, at, numeric)  # an array is one
        return values


def split_columns(lines: list[str], width: int) -> list[list[str]]:
    """The cells of plain lines of `width` fields each, by column, as the csv module reads them."""
    cells = ",".join(lines).split(",") if lines else []
    return [cells[position::width] for position in range(width)]


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

    def chunks(self, width: int, size: int, *, grids: bool = False) -> Iterator[Chunk]:
        """The rows after the header, at most `size` lines' worth at a time; with `grids`, a
        chunk of plain rows only keeps a grid, and splits its cells only when asked to."""
        items = self._rows if self._first is None else itertools.chain([self._first], self._rows)
        builder = _Builder(width, grids)
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
    """Plain rows are kept as their text until the chunk is taken or a parsed row follows them:
    then they are split (or, for a chunk of plain rows only, read as a grid)."""

    def __init__(self, width: int, grids: bool) -> None:
        self.width = width
        self.grids = grids
        self.consumed = 0
        self.chunk = self._empty()
        self.unsplit: list[str] = []  # the chunk's last plain rows, not yet in its columns

    def _empty(self) -> Chunk:
        return Chunk(lines=[], split=[[] for _ in range(self.width)], text=[])

    def add_plain(self, first_line: int, lines: list[str]) -> None:
        self.consumed += len(lines)
        chunk, width = self.chunk, self.width
        counts = list(map(str.count, lines, itertools.repeat(",")))
        if counts.count(width - 1) == len(lines) and (width > 1 or "" not in lines):
            self.unsplit.extend(lines)
            chunk.lines.extend(range(first_line, first_line + len(lines)))
            return
        for offset, (line, count) in enumerate(zip(lines, counts, strict=True)):
            if not line:
                continue
            if count == width - 1:
                self.unsplit.append(line)
                chunk.lines.append(first_line + offset)
            else:
                chunk.ragged.append((first_line + offset, line.split(",")))

    def add_parsed(self, line: int, cells: list[str]) -> None:
        self.consumed += 1
        if len(cells) == self.width:
            self._split()
            for column, cell in zip(self.chunk.columns, cells, strict=True):
                column.append(cell)
            self.chunk.lines.append(line)
            self.chunk.text = None  # a quoted row is written cell by cell
        elif cells:
            self.chunk.ragged.append((line, cells))

    def _split(self) -> None:
        """The plain rows so far into the chunk's columns (and its text, while it has one)."""
        chunk = self.chunk
        if chunk.text is not None:
            chunk.text.extend(self.unsplit)
        for column, cells in zip(
            chunk.columns, split_columns(self.unsplit, self.width), strict=True
        ):
            column.extend(cells)
        self.unsplit = []

    def take(self) -> Iterator[Chunk]:
        chunk = self.chunk
        grid = self._grid() if self.grids and chunk.text is not None and self.unsplit else None
        if grid is not None:
            chunk.text, chunk.split, chunk.grid = self.unsplit, None, grid
            self.unsplit = []
        else:
            self._split()
        if len(chunk):
            yield chunk
        self.chunk = self._empty()
        self.consumed = 0

    def _grid(self) -> Grid | None:
        """The chunk's rows as a grid: they are plain, so the grid reads the same cells."""
        from shared.codecs._csv_grid import plain_grid

        return plain_grid(("\n".join(self.unsplit) + "\n").encode("utf-8"), self.width)


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
