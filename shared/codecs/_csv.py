"""CSV bodies: a header row and data rows in, the same rows with prediction columns out.

Cells are read as text, so columns the model does not use come back exactly as they were sent.
The layout (separator, decimal mark, which column is which feature) is `_csv_layout`'s, as for
uploads; the answer is written in the layout it came in. Rows are numbered from 0, the first
data row, as in every other protocol; a fault also names the line a spreadsheet shows the row
on, the header being line 1.
"""

from __future__ import annotations

import bisect
import codecs
import csv
import dataclasses
import io
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from shared.codecs._csv_layout import (
    COMMAS,
    MISSING_COLUMNS,
    CsvRefused,
    Dialect,
    NotUtf8,
    dialect_of,
    field_count,
    header_row,
    match_columns,
    no_header,
    written,
)
from shared.codecs._csv_reader import CsvFile
from shared.codecs._json import check_count
from shared.errors import BadRequest, InvalidInput, MarketcastError, Problem
from shared.validation import Rows

if TYPE_CHECKING:
    from shared.codecs._csv_grid import Grid
    from shared.schema import ModelSchema

CSV_BLOCK_ROWS = 10_000
GRID_MIN_BYTES = 1 << 16  # smaller bodies: the row reader, and no numpy import


@dataclass(frozen=True)
class Table:
    """A CSV body as text: the header and the data rows by column, every cell as sent.

    `text` holds each row as sent, when every row was plain (no quotes). A large plain body
    keeps its `grid` instead of `cells`: its columns are cut out when asked for. `lines`: the
    line of each row, as a spreadsheet shows it.
    """

    header: list[str]
    cells: list[list[str]]
    text: list[str] | None = None
    grid: Grid | None = None
    dialect: Dialect = COMMAS
    lines: Sequence[int] = ()

    def __len__(self) -> int:
        if self.grid is not None:
            return len(self.grid)
        return len(self.cells[0]) if self.cells else 0

    def columns(self, numeric: Collection[str] = ()) -> dict[str, Sequence[Any]]:
        """Every column by its name as sent; from a grid, the `numeric` ones as floats where they
        are plainly numbers (the same values the clean check would read from their text)."""
        return {name: self._column(at, name in numeric) for at, name in enumerate(self.header)}

    def rows(self, schema: ModelSchema, added: Sequence[str] = ()) -> Rows:
        """The model's columns, found by header name (`match_columns`), as the rows to predict;
        other columns are kept for the answer, not faults. `added`: the columns the answer
        appends. Raises InvalidInput for a missing column, BadRequest for another header fault.
        """
        try:
            positions = match_columns(self.header, schema.feature_names, added)
        except CsvRefused as exc:
            raise refusal(exc) from exc
        numeric = schema.numeric_names
        columns = {name: self._column(at, name in numeric) for name, at in positions.items()}
        return Rows.of_columns(columns, len(self))

    def _column(self, at: int, numeric: bool) -> Sequence[Any]:
        if self.grid is not None:
            from shared.codecs._csv_grid import numeric_or_text

            values: Sequence[Any] = numeric_or_text(self.grid, at, numeric)  # an array is one
            return values
        return self.dialect.numbers_read(self.cells[at]) if numeric else self.cells[at]

    def with_lines(self, problems: Sequence[Problem]) -> tuple[Problem, ...]:
        """The problems, each of a row naming that row's line too."""
        return tuple(
            problem
            if problem.row is None
            else dataclasses.replace(problem, line=self.lines[problem.row])
            for problem in problems
        )


def refusal(refused: CsvRefused) -> MarketcastError:
    """A refused CSV as the HTTP error: a missing column is the schema's (422, as in JSON), any
    other fault the body's (400); the message is the one uploads report."""
    error = InvalidInput if refused.code == MISSING_COLUMNS else BadRequest
    return error(refused.message, refused.problems)


def read_csv(body: bytes, max_instances: int) -> Table:
    """The body as a table of text cells, in the layout its header line shows."""
    try:
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise NotUtf8(body[: exc.start].count(b"\n") + 1) from exc
        table = _grid_table(body, max_instances) if len(body) >= GRID_MIN_BYTES else None
        return table if table is not None else _read_rows(text, max_instances)
    except CsvRefused as exc:
        raise refusal(exc) from exc


def _grid_table(body: bytes, max_instances: int) -> Table | None:
    """A large plain comma-separated body as a grid, or None: then the reader reads it (and
    names any fault)."""
    from shared.codecs._csv_grid import plain_grid

    start = len(codecs.BOM_UTF8) if body.startswith(codecs.BOM_UTF8) else 0
    end = body.find(b"\n", start)
    first = body[start:end].removesuffix(b"\r")
    if end < 0 or not first or any(c in first for c in (b'"', b"\r", b"\x00")):
        return None
    line = first.decode("utf-8")
    following = body[end + 1 : end + 1 + GRID_MIN_BYTES].decode("utf-8", "replace").splitlines()
    if dialect_of(line, following) != COMMAS:  # the reader reads other separators
        return None
    header = line.split(",")
    grid = plain_grid(body[end + 1 :], len(header))
    if grid is None or len(grid) > max_instances:
        return None
    return Table(header, [], grid.lines(), grid, lines=range(2, len(grid) + 2))


def _read_rows(text: str, max_instances: int) -> Table:
    file = CsvFile.of_text(text)
    header = file.header()
    if header is None:
        raise no_header()
    cells: list[list[str]] = [[] for _ in header]
    rows, texts, plain, lines = 0, [], True, []
    # Blocks of rows at C speed; the row limit still stops the read early.
    for chunk in file.chunks(len(header), CSV_BLOCK_ROWS):
        if chunk.ragged:
            line, ragged = chunk.ragged[0]
            row = rows + bisect.bisect(chunk.lines, line)
            reason = field_count(len(ragged), len(header))
            raise BadRequest(
                f"CSV row {row} (line {line}) {reason}", (Problem(row, None, reason, line=line),)
            )
        rows += len(chunk.lines)
        check_count(rows, max_instances)
        for column, values in zip(cells, chunk.columns, strict=True):
            column += values
        lines += chunk.lines
        plain = plain and chunk.text is not None
        if plain and chunk.text is not None:
            texts += chunk.text
    return Table(header, cells, texts if plain else None, dialect=file.dialect, lines=lines)


def encode_table(table: Table, added: Mapping[str, Any]) -> bytes:
    """The rows as sent with columns appended, in the body's layout.

    Plain rows are written back as they were sent, which is what a CSV writer writes for
    cells without quotes, separators or line ends.
    """
    dialect = table.dialect
    out = io.StringIO()
    out.write(header_row([*table.header, *added], dialect.separator))
    writer = csv.writer(out, delimiter=dialect.separator, lineterminator="\r\n")
    appended = [appended_cells(values, dialect) for values in added.values()]
    if table.text is None:
        writer.writerows(zip(*table.cells, *appended, strict=True))
        return out.getvalue().encode("utf-8")
    out.write(lines_with_cells(table.text, appended, dialect.separator))
    return out.getvalue().encode("utf-8")


def lines_with_cells(lines: list[str], appended: Sequence[list[str]], separator: str = ",") -> str:
    """Each line, then the separator and its cell of each appended column, then CRLF.

    Appended cells are numbers and feature names joined by ";": none needs quotes in a comma-
    separated file, and in another only a cell that holds its separator does.
    """
    width = 2 * len(appended) + 2
    parts = [separator] * (width * len(lines))
    parts[0::width] = lines
    for position, cells in enumerate(appended):
        if separator != "," and separator in "".join(cells):
            cells = [written(cell, separator) for cell in cells]
        parts[2 * position + 2 :: width] = cells
    parts[width - 1 :: width] = ["\r\n"] * len(lines)
    return "".join(parts)


def appended_cells(values: Any, dialect: Dialect) -> list[str]:
    """`cell_texts`, numbers with the dialect's decimal mark: the cells of an appended column."""
    texts = cell_texts(values)
    return texts if texts is values else dialect.numbers_written(texts)  # text: as it is


def cell_texts(values: Any) -> list[str]:
    """One CSV cell per value: floats as `float_texts`, text as it is, a missing value (None,
    or NaN from numpy: a withheld bound) as an empty cell."""
    if isinstance(values, list):
        if set(map(type, values)) <= {str}:  # text cells: as they are, the very list
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
