"""A CSV's rows, in chunks of columns, each row with its line: a request body or an uploaded file.

Text is decoded in blocks of whole lines. A block without quotes, NULs or lone carriage returns
(nearly every block of nearly every file) is split with str methods, which reads exactly what
the csv module would, at a fraction of the cost, and keeps each row's text as written. Other
blocks go through one csv.reader that lives as long as the file, so a quoted field may span
blocks; either way the rows and their line numbers are the csv module's.

For grids, such a block is also kept as its bytes (every block is still decoded, which is what
checks it is UTF-8): a run of rows that a grid reads goes from those bytes to the grid, never
split into lines; any other run is split from the bytes' text as above.

Lines end with CRLF, LF or CR. The separator is decided on the header's line, the first that is
not blank (`_csv_layout.dialect_of`), before any row is split. A row's line is the one a
spreadsheet shows it on: records are counted, blank ones too, and a newline inside a quoted field
does not start a new one (`_csv_layout`). Blank lines are not rows.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import itertools
import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    import numpy as np

    from shared.codecs._csv_grid import Grid

from shared.codecs._csv_layout import COMMAS, SAMPLE_LINES, Dialect, NotCsv, NotUtf8, dialect_of
from shared.codecs._csv_lines import lf_bytes

__all__ = ["BLOCK_BYTES", "Chunk", "CsvFile", "NotCsv", "NotUtf8", "split_columns"]

BLOCK_BYTES = 1 << 20
_BOM = codecs.BOM_UTF8
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")


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


def split_columns(lines: list[str], width: int, separator: str = ",") -> list[list[str]]:
    """The cells of plain lines of `width` fields each, by column, as the csv module reads them."""
    cells = separator.join(lines).split(separator) if lines else []
    return [cells[position::width] for position in range(width)]


@dataclass(frozen=True)
class _Plain:
    first_line: int
    lines: list[str]  # without line ends; blank lines included


@dataclass(frozen=True)
class _PlainBytes:
    """A plain block as bytes: LF line ends, a final LF; blank lines included."""

    first_line: int
    data: bytes

    def as_lines(self) -> _Plain:
        """The block as `_Plain` lines: the same lines `_plain_lines` splits from its text."""
        return _Plain(self.first_line, self.data.decode("utf-8").split("\n")[:-1])


@dataclass(frozen=True)
class _Parsed:
    line: int
    cells: list[str]


class CsvFile:
    """One pass over a file: `header()`, then `chunks()`; `dialect` is known once `header()`
    has found the header's line."""

    def __init__(self, source: io.BufferedReader[Any], block_bytes: int = BLOCK_BYTES) -> None:
        binary: IO[bytes] = source
        if source.peek(2)[:2] == b"\x1f\x8b":
            binary = cast(IO[bytes], gzip.GzipFile(fileobj=source, mode="rb"))
        self._binary = binary
        self._block_bytes = block_bytes
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self._carry = ""
        self._raw: bytes | None = b""  # the bytes of `_carry`; None: not kept (in-memory text)
        self._bom_checked = False
        self._eof = False
        self._line = 0  # records consumed so far: the line of the last one
        self._pending: deque[str] = deque()  # lines the csv reader has yet to read
        self._reader: Iterator[list[str]] | None = None  # made once the separator is known
        self._dialect: Dialect | None = None
        self._rows = self._items()
        self._first: _Plain | _PlainBytes | None = None
        self.header_line = 0  # the line the header was found on

    @classmethod
    def of_text(cls, text: str) -> CsvFile:
        """A file already in memory and decoded, read as one block."""
        file = cls(io.BufferedReader(io.BytesIO(b"")))
        file._carry = text
        file._raw = None
        return file

    @property
    def dialect(self) -> Dialect:
        return self._dialect or COMMAS

    def header(self) -> list[str] | None:
        """The first row that is not blank; None when the file has none."""
        for item in self._rows:
            if isinstance(item, _PlainBytes):
                found = self._header_of(item)
                if found is not None:
                    return found
                continue
            if isinstance(item, _Parsed):
                if item.cells:
                    self.header_line = item.line
                    return item.cells
                continue
            for offset, line in enumerate(item.lines):
                if line:
                    self.header_line = item.first_line + offset
                    rest = item.lines[offset + 1 :]
                    self._decide(line, rest[:SAMPLE_LINES])
                    self._first = _Plain(self.header_line + 1, rest)
                    return line.split(self.dialect.separator)
        return None

    def _header_of(self, item: _PlainBytes) -> list[str] | None:
        """The block's first line that is not blank, split; the rest stays bytes for `chunks`."""
        data = item.data.lstrip(b"\n")
        if not data:
            return None
        self.header_line = item.first_line + len(item.data) - len(data)
        end = data.index(b"\n") + 1
        line, rest = data[: end - 1].decode("utf-8"), data[end:]
        sample = rest.split(b"\n", SAMPLE_LINES)[:SAMPLE_LINES]
        self._decide(line, (text.decode("utf-8", "replace") for text in sample))
        self._first = _PlainBytes(self.header_line + 1, rest)
        return line.split(self.dialect.separator)

    def _decide(self, line: str, following: Iterable[str]) -> None:
        """The dialect, from the header's line and the lines after it; decided once."""
        if self._dialect is None:
            self._dialect = dialect_of(line, following)

    def _header_lines(self, lines: list[str]) -> list[str]:
        """A block's lines (with their ends) for the csv reader, when the header is not yet
        found: the blank lines before it counted and left out, the dialect decided on its line."""
        blank = 0
        while blank < len(lines) and not lines[blank].strip("\r\n"):
            blank += 1
        self._line += blank
        rest = lines[blank:]
        if not rest:
            return rest
        end, quotes = 1, rest[0].count('"')
        while end < len(rest) and quotes % 2:  # a quoted name may hold a line end
            quotes += rest[end].count('"')
            end += 1
        following = (line.rstrip("\r\n") for line in rest[end : end + SAMPLE_LINES])
        self._decide("".join(rest[:end]).rstrip("\r\n"), following)
        return rest

    def chunks(self, width: int, size: int, *, grids: bool = False) -> Iterator[Chunk]:
        """The rows after the header, at most `size` lines' worth at a time; with `grids`, a
        chunk of plain rows only keeps a grid, and splits its cells only when asked to."""
        items = self._rows if self._first is None else itertools.chain([self._first], self._rows)
        grids = grids and self.dialect.separator == ","  # a grid reads commas only
        builder = _Builder(width, grids, self.dialect.separator)
        for item in items:
            if isinstance(item, _PlainBytes):
                from shared.codecs._csv_grid import uniform_rows

                ends = uniform_rows(item.data, width) if grids else None
                if ends is None:
                    item = item.as_lines()
                else:
                    yield from self._byte_rows(builder, item, ends, size)
                    continue
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

    @staticmethod
    def _byte_rows(
        builder: _Builder, item: _PlainBytes, ends: np.ndarray, size: int
    ) -> Iterator[Chunk]:
        """A block of uniform rows into the builder as byte runs, `size` lines per chunk;
        `ends`: the offset of the separator after each cell, as `uniform_rows` found them."""
        start = 0
        while start < len(ends):
            stop = min(len(ends), start + size - builder.consumed)
            begin = int(ends[start - 1, -1]) + 1 if start else 0
            piece = item.data[begin : int(ends[stop - 1, -1]) + 1]
            builder.add_bytes(item.first_line + start, piece, ends[start:stop] - begin)
            start = stop
            if builder.consumed >= size:
                yield from builder.take()

    def _items(self) -> Iterator[_Plain | _PlainBytes | _Parsed]:
        """Plain blocks whole, other rows one by one, in file order."""
        while True:
            if self._pending:  # the csv reader stopped inside a block: it reads on
                yield self._parsed_row()
                continue
            block = self._block()
            if block is None:
                return
            text, raw = block
            data = _plain_bytes(raw) if raw is not None else None
            if data is not None:
                yield _PlainBytes(self._line + 1, data)
                self._line += data.count(b"\n")
                continue
            lines = _plain_lines(text)
            if lines is not None:
                yield _Plain(self._line + 1, lines)
                self._line += len(lines)
                continue
            found = _LINE.findall(text)
            self._pending.extend(found if self._dialect else self._header_lines(found))

    def _parsed_row(self) -> _Parsed:
        """The next record, read by the csv module with the dialect's separator."""
        if self._reader is None:
            self._reader = csv.reader(
                self._reader_lines(), delimiter=self.dialect.separator, strict=True
            )
        start = self._line + 1
        try:
            cells = next(self._reader)
        except csv.Error as exc:
            raise NotCsv(start, str(exc)) from exc
        self._line = start
        return _Parsed(start, cells)

    def _reader_lines(self) -> Iterator[str]:
        """The csv reader's source: pending lines, then whole blocks (a field spans blocks)."""
        while True:
            if not self._pending:
                block = self._block()
                if block is None:
                    return
                self._pending.extend(_LINE.findall(block[0]))
            yield self._pending.popleft()

    def _block(self) -> tuple[str, bytes | None] | None:
        """The next run of whole lines (the last may lack its line end), and its bytes when
        they are kept; None at the end."""
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
            raw = self._raw_block(data, cut=bool(end))
            if end:
                return text[:end], raw
        return None

    def _raw_block(self, data: bytes, cut: bool) -> bytes | None:
        """The bytes of the text `_block` cuts, cut by the same rule: CR and LF are single
        bytes in UTF-8 and never inside another character, so the last line end is the same."""
        if self._raw is None:
            return None
        raw = self._raw + data
        if not self._bom_checked and (self._eof or len(raw) >= 3 or not _BOM.startswith(raw)):
            raw, self._bom_checked = raw.removeprefix(_BOM), True  # as utf-8-sig drops it
        end = max(raw.rfind(b"\n"), raw.rfind(b"\r", 0, len(raw) - 1)) + 1
        if self._eof:
            end = len(raw)
        if not cut:
            self._raw = raw
            return None
        self._raw = raw[end:]
        return raw[:end]


class _Builder:
    """Plain rows are kept as their text until the chunk is taken or a parsed row follows them:
    then they are split (or, for a chunk of plain rows only, read as a grid)."""

    def __init__(self, width: int, grids: bool, separator: str = ",") -> None:
        self.width = width
        self.grids = grids
        self.separator = separator
        self.consumed = 0
        self.chunk = self._empty()
        self.unsplit: list[str] = []  # the chunk's last plain rows, not yet in its columns
        self.pieces: list[tuple[bytes, np.ndarray]] = []  # or: its rows as bytes, and `ends`

    def _empty(self) -> Chunk:
        return Chunk(lines=[], split=[[] for _ in range(self.width)], text=[])

    def add_bytes(self, first_line: int, data: bytes, ends: np.ndarray) -> None:
        """Uniform rows (LF line ends), `ends` their separators' offsets: kept as bytes while
        the chunk may be a grid."""
        if self.unsplit or self.chunk.text is None or any(self.chunk.columns):
            self.add_plain(first_line, data.decode("utf-8").split("\n")[:-1])
            return
        self.consumed += len(ends)
        self.pieces.append((data, ends))
        self.chunk.lines.extend(range(first_line, first_line + len(ends)))

    def _bytes_to_text(self) -> None:
        """The rows kept as bytes into `unsplit`: a row other than theirs follows them."""
        if self.pieces:
            data = b"".join(data for data, _ in self.pieces)
            self.unsplit.extend(data.decode("utf-8").split("\n")[:-1])
            self.pieces = []

    def add_plain(self, first_line: int, lines: list[str]) -> None:
        self._bytes_to_text()
        self.consumed += len(lines)
        chunk, width = self.chunk, self.width
        counts = list(map(str.count, lines, itertools.repeat(self.separator)))
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
                chunk.ragged.append((first_line + offset, line.split(self.separator)))

    def add_parsed(self, line: int, cells: list[str]) -> None:
        self._bytes_to_text()
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
        split = split_columns(self.unsplit, self.width, self.separator)
        for column, cells in zip(chunk.columns, split, strict=True):
            column.extend(cells)
        self.unsplit = []

    def take(self) -> Iterator[Chunk]:
        chunk = self.chunk
        grid = self._byte_grid()
        if grid is not None:
            self.unsplit = grid.lines()
        elif self.grids and chunk.text is not None and self.unsplit:
            grid = self._grid()
        if grid is not None:
            chunk.text, chunk.split, chunk.grid = self.unsplit, None, grid
            self.unsplit = []
        else:
            self._split()
        if len(chunk):
            yield chunk
        self.chunk = self._empty()
        self.consumed = 0

    def _byte_grid(self) -> Grid | None:
        """The grid of the rows kept as bytes (a chunk has those or others, never both); each
        line is within the field limit, as `_plain_bytes` found."""
        if not self.pieces:
            return None
        import numpy as np

        from shared.codecs._csv_grid import grid_of

        offsets = itertools.accumulate((len(data) for data, _ in self.pieces[:-1]), initial=0)
        ends = np.concatenate([e + at for (_, e), at in zip(self.pieces, offsets, strict=True)])
        grid = grid_of(b"".join(data for data, _ in self.pieces), ends)
        self.pieces = []
        return grid

    def _grid(self) -> Grid | None:
        """The chunk's rows as a grid: they are plain, so the grid reads the same cells."""
        from shared.codecs._csv_grid import plain_grid

        return plain_grid(("\n".join(self.unsplit) + "\n").encode("utf-8"), self.width)


def _plain_bytes(block: bytes) -> bytes | None:
    """The block as `lf_bytes`, when `_plain_lines` would read its text as plain: the same
    checks, on bytes (a line's bytes are never fewer than its characters)."""
    raw = lf_bytes(block)
    if raw is None:
        return None
    if len(raw) > csv.field_size_limit():
        import numpy as np

        ends = np.flatnonzero(np.frombuffer(raw, dtype=np.uint8) == ord("\n"))
        if np.diff(ends, prepend=-1).max() - 1 > csv.field_size_limit():
            return None
    return raw


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
