"""CSV bodies: a header row and data rows in, the same rows with prediction columns out.

Cells are read as text, so columns the model does not use come back exactly as they were sent.
Rows are numbered from 0, the first data row, as in every other protocol.
"""

from __future__ import annotations

import bisect
import codecs
import collections
import csv
import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from shared.codecs._csv_reader import CsvFile, NotCsv
from shared.codecs._json import check_count
from shared.errors import BadRequest
from shared.validation import Rows

if TYPE_CHECKING:
    from shared.codecs._csv_grid import Grid

CSV_BLOCK_ROWS = 10_000
GRID_MIN_BYTES = 1 << 16  # smaller bodies: the row reader, and no numpy import


@dataclass(frozen=True)
class Table:
    """A CSV body as text: the header and the data rows by column, every cell as sent.

    `text` holds each row as sent, when every row was plain (no quotes). A large plain body
    keeps its `grid` instead of `cells`: its columns are cut out when asked for.
    """

    header: list[str]
    cells: list[list[str]]
    text: list[str] | None = None
    grid: Grid | None = None

    def __len__(self) -> int:
        if self.grid is not None:
            return len(self.grid)
        return len(self.cells[0]) if self.cells else 0

    def columns(self, numeric: Collection[str] = ()) -> dict[str, Sequence[Any]]:
        """Every column by name; from a grid, the `numeric` ones as floats where they are plainly
        numbers (the same values the clean check would read from their text)."""
        if self.grid is None:
            return dict(zip(self.header, self.cells, strict=True))
        from shared.codecs._csv_grid import numeric_or_text

        grid = self.grid
        return {
            name: numeric_or_text(grid, at, name in numeric) for at, name in enumerate(self.header)
        }

    def rows(self, numeric: Collection[str] = ()) -> Rows:
        """The rows to predict; columns the model does not know are kept, not faults."""
        return Rows.of_columns(self.columns(numeric), len(self), allow_extra=True)


def read_csv(body: bytes, max_instances: int) -> Table:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"CSV body is not UTF-8 (byte {exc.start})") from exc
    table = _grid_table(body, max_instances) if len(body) >= GRID_MIN_BYTES else None
    return table if table is not None else _read_rows(text, max_instances)


def _grid_table(body: bytes, max_instances: int) -> Table | None:
    """A large plain body as a grid, or None: then the reader reads it (and names any fault)."""
    from shared.codecs._csv_grid import plain_grid

    start = len(codecs.BOM_UTF8) if body.startswith(codecs.BOM_UTF8) else 0
    end = body.find(b"\n", start)
    first = body[start:end].removesuffix(b"\r")
    if end < 0 or not first or any(c in first for c in (b'"', b"\r", b"\x00")):
        return None
    header = first.decode("utf-8").split(",")
    if not any(name.strip() for name in header):
        return None
    _check_header(header)  # the reader would say the same of this header
    grid = plain_grid(body[end + 1 :], len(header))
    if grid is None or len(grid) > max_instances:
        return None
    return Table(header, [], grid.lines(), grid)


def _read_rows(text: str, max_instances: int) -> Table:
    file = CsvFile.of_text(text)
    try:
        header = file.header()
        if not header or file.header_line != 1 or not any(name.strip() for name in header):
            raise BadRequest("CSV body is empty; expected a header row")
        _check_header(header)
        cells: list[list[str]] = [[] for _ in header]
        rows, texts, plain = 0, [], True
        # Blocks of rows at C speed; the row limit still stops the read early.
        for chunk in file.chunks(len(header), CSV_BLOCK_ROWS):
            if chunk.ragged:
                line, ragged = chunk.ragged[0]
                row = rows + bisect.bisect(chunk.lines, line)
                raise BadRequest(
                    f"CSV row {row} has {len(ragged)} fields; the header has {len(header)}"
                )
            rows += len(chunk.lines)
            check_count(rows, max_instances)
            for column, values in zip(cells, chunk.columns, strict=True):
                column += values
            plain = plain and chunk.text is not None
            if plain and chunk.text is not None:
                texts += chunk.text
    except NotCsv as exc:
        raise BadRequest(f"CSV body cannot be parsed: {exc.reason} (line {exc.line})") from exc
    return Table(header, cells, texts if plain else None)


def encode_table(table: Table, added: Mapping[str, Any]) -> bytes:
    """The rows as sent with columns appended.

    Plain rows are written back as they were sent, which is what a CSV writer writes for
    cells without quotes, commas or line ends.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*table.header, *added])
    appended = [cell_texts(values) for values in added.values()]
    if table.text is None:
        writer.writerows(zip(*table.cells, *appended, strict=True))
        return out.getvalue().encode("utf-8")
    out.write(lines_with_cells(table.text, appended))
    return out.getvalue().encode("utf-8")


def lines_with_cells(lines: list[str], appended: Sequence[list[str]]) -> str:
    """Each line, then a comma and its cell of each appended column, then CRLF."""
    width = 2 * len(appended) + 2
    parts = [","] * (width * len(lines))
    parts[0::width] = lines
    for position, cells in enumerate(appended):
        parts[2 * position + 2 :: width] = cells
    parts[width - 1 :: width] = ["\r\n"] * len(lines)
    return "".join(parts)


def cell_texts(values: Any) -> list[str]:
    """One CSV cell per value: floats as `float_texts`, text as it is, a missing value (None,
    or NaN from numpy: a withheld bound) as an empty cell."""
    if isinstance(values, list):
        if set(map(type, values)) <= {str}:  # text cells: as they are
            return values
        return [_cell(value) for value in values]
    import numpy as np  # batches only

    if values.dtype == object:
        return [_cell(value) for value in values.tolist()]
    if np.isnan(values).any():
        return [_cell(value) for value in values.tolist()]
    return float_texts(values)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return value if isinstance(value, str) else repr(value)


def float_texts(values: Any) -> list[str]:
    """repr() of each float: the shortest text that reads back as the same float.

    For numpy arrays, orjson writes the same text many times faster, except for magnitudes
    under 1e-4 (which it writes without an exponent) and for NaN and infinities. It reads a
    float64 array in place (no Python float per value) when the array is one block in memory.
    """
    if isinstance(values, list):
        return list(map(repr, values))
    import numpy as np  # batches only

    magnitude = np.abs(values)
    if not len(values) or not np.isfinite(values).all():
        return list(map(repr, values.tolist()))
    if ((magnitude < 1e-4) & (magnitude > 0)).any():
        return list(map(repr, values.tolist()))
    if values.dtype != np.float64:  # as Python numbers: an int stays an int
        return orjson.dumps(values.tolist()).decode()[1:-1].split(",")
    array = np.ascontiguousarray(values)
    return orjson.dumps(array, option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1].split(",")


def _check_header(header: list[str]) -> None:
    if any(not name.strip() for name in header):
        raise BadRequest("CSV header has an empty column name")
    repeated = sorted(name for name, count in collections.Counter(header).items() if count > 1)
    if repeated:
        raise BadRequest(f"CSV header repeats the column {repeated[0]!r}")
