"""A large plain CSV body as a grid of byte offsets: cells are cut out in C, a column at a time.

Plain means what `_csv_reader` reads with str methods (no quotes, NULs or lone carriage
returns), and also: no blank lines, every line as many fields as the header, no line beyond the
csv module's field limit. Such a body reads to exactly the reader's cells, so the grid is only
a faster way to the same table. It also reads a column of plain numbers (digits with at most
one dot, JSON's spelling, which float() reads the same) straight to floats, without a str per
cell; a column with any other cell is read as text, as today, and the clean check decides.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from shared.codecs._csv_lines import lf_bytes

_NEWLINE, _COMMA, _ZERO = ord("\n"), ord(","), ord("0")
_PLAIN_NUMBER_BYTES = b"0123456789.,"
_LONGEST_NUMBER = 20  # digits beyond this (an integer past 64 bits) are left to the text path
_EXACT_DIGITS = 15  # every integer of this many digits is a float exactly


@dataclass(frozen=True)
class Grid:
    """`data`: the body after its header, LF line ends, a final LF; `ends[row, column]`: the
    offset of the separator after each cell, `starts` that of each cell."""

    data: np.ndarray
    starts: np.ndarray
    ends: np.ndarray

    def __len__(self) -> int:
        return len(self.ends)

    @property
    def width(self) -> int:
        return int(self.ends.shape[1])

    def any_cell_starts(self, table: np.ndarray) -> bool:
        """Whether a cell's first byte is one that `table` (256 flags) marks: an empty cell's
        first byte is its separator, a non-ASCII cell's a lead byte, so neither is mistaken."""
        return bool(table[self.data[self.starts]].any())

    def lines(self) -> list[str]:
        """Each row's text as sent, without its line end."""
        return self.data.tobytes().decode("utf-8").split("\n")[:-1]

    def texts(self, column: int) -> list[str]:
        """The column's cells as text, exactly as the reader would have split them."""
        return self._cells(column).decode("utf-8").split(",")[:-1]

    def numbers(self, column: int) -> np.ndarray | None:
        """The column as floats, when every cell is a plain number; else None."""
        lengths = self.ends[:, column] - self.starts[:, column]
        if not len(self) or lengths.min() < 1 or lengths.max() > _LONGEST_NUMBER:
            return None
        integers = self._integers(column, lengths)
        if integers is not None:
            return integers
        cells = self._cells(column)
        if cells.translate(None, _PLAIN_NUMBER_BYTES):
            return None
        try:
            parsed = orjson.loads(b"[" + cells[:-1] + b"]")
        except orjson.JSONDecodeError:  # '1.', '.5', '01', '1.2.3': the text path reads them
            return None
        return np.array(parsed, dtype=float) if len(parsed) == len(self) else None

    def _integers(self, column: int, lengths: np.ndarray) -> np.ndarray | None:
        """The column as floats when every cell is JSON's integer (digits, no leading zero) of
        at most 15 digits, which a float holds exactly: read a digit place at a time, in numpy."""
        starts, last = self.starts[:, column], len(self.data) - 1
        if lengths.max() > _EXACT_DIGITS or ((self.data[starts] == _ZERO) & (lengths > 1)).any():
            return None
        values = np.zeros(len(self), dtype=np.int64)
        for place in range(int(lengths.max())):
            inside = lengths > place
            digits = self.data[np.minimum(starts + place, last)] - _ZERO  # wraps below "0"
            if (digits[inside] > 9).any():
                return None
            values = np.where(inside, values * 10 + digits, values)
        return values.astype(float)

    def _cells(self, column: int) -> bytes:
        """The column's cells, each followed by a comma."""
        starts, ends = self.starts[:, column], self.ends[:, column] + 1
        lengths = ends - starts
        offsets = np.cumsum(lengths) - lengths
        picked = self.data[np.arange(int(lengths.sum())) + np.repeat(starts - offsets, lengths)]
        picked[picked == _NEWLINE] = _COMMA
        return bytes(picked.tobytes())


def plain_grid(data: bytes, width: int) -> Grid | None:
    """The grid of the rows after the header, or None unless the body is plain."""
    lines = lf_bytes(data)
    if lines is None:
        return None
    data = lines
    ends = uniform_rows(data, width)
    if ends is None:
        return None
    grid = grid_of(data, ends)
    if (grid.ends[:, -1] - grid.starts[:, 0]).max() > csv.field_size_limit():
        return None
    return grid


def grid_of(data: bytes, ends: np.ndarray) -> Grid:
    """The grid of uniform rows, from the separators `uniform_rows` found."""
    starts = np.empty_like(ends)
    starts[0, 0] = 0
    starts[1:, 0] = ends[:-1, -1] + 1
    starts[:, 1:] = ends[:, :-1] + 1
    return Grid(np.frombuffer(data, dtype=np.uint8), starts, ends)


def uniform_rows(data: bytes, width: int) -> np.ndarray | None:
    """The offset of the separator after each cell (a row per line), when every line of `data`
    (LF line ends, a final LF) has `width` fields and none is blank: what a grid reads."""
    if data.startswith(b"\n") or b"\n\n" in data:
        return None
    array = np.frombuffer(data, dtype=np.uint8)
    separators = np.flatnonzero((array == _NEWLINE) | (array == _COMMA))
    if len(separators) % width:
        return None
    ends = separators.reshape(-1, width)
    if (array[ends[:, -1]] != _NEWLINE).any() or (array[ends[:, :-1]] == _NEWLINE).any():
        return None
    return ends


def numeric_or_text(grid: Grid, column: int, numeric: bool) -> Any:
    """A model's numeric column as floats where it can be; any other column as text."""
    if numeric:
        numbers = grid.numbers(column)
        if numbers is not None:
            return numbers
    return grid.texts(column)
