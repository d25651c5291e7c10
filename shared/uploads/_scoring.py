"""Scoring an uploaded file's rows: streamed through the model in chunks, each row scored or
rejected with its reasons.

Files are UTF-8 (with or without BOM), CRLF or LF, gzip-compressed or not (recognised by their
first bytes). Their layout is a request body's (`shared.codecs._csv_layout`): comma, semicolon
or tab separated, decimal commas read in a semicolon-separated file, columns matched by header
name ignoring case, surrounding spaces and `_` against space; the outputs are written with the
file's separator and decimal mark. A row's line number is the one a spreadsheet shows it on
(header = line 1; a newline inside a quoted field does not start a line).
Every text cell written out is neutralised against spreadsheet formulas: a cell starting with
= + - @ tab or carriage return gets a leading apostrophe, unless it is a plain number.

Nothing here talks to storage: streams and sinks are handed in.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import re
import zlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shared import codecs
from shared.codecs import Chunk, CsvFile, CsvRefused, Dialect
from shared.codecs._csv_reader import BLOCK_BYTES
from shared.errors import InvalidInput, Problem
from shared.predict import Options, output_columns, predict
from shared.store import LoadedModel
from shared.uploads._layout import Layout, neutralise, read_layout
from shared.uploads._problems import NOT_GZIP, OPTIONS_UNAVAILABLE, FileProblem
from shared.validation import Rows

WRONG_FIELD_COUNT = "wrong number of fields"

_FORMULA_STARTS = "=+-@\t\r"
_FORMULA_LINE_START = re.compile(f"^[{re.escape(_FORMULA_STARTS)}]", re.MULTILINE)
_FORMULA_BYTES = np.isin(np.arange(256), [ord(c) for c in _FORMULA_STARTS])
_NEWLINE = ord("\n")


@dataclass
class Tally:
    """Rows counted as they stream by: read = scored + rejected, always."""

    read: int = 0
    scored: int = 0
    rejected: int = 0
    reasons: Counter[tuple[str | None, str]] = field(default_factory=Counter)
    outside_rows: int = 0  # scored rows with a feature outside the training range
    outside: Counter[str] = field(default_factory=Counter)  # such rows, per feature

    def add(self, chunk: ScoredChunk) -> None:
        self.scored += chunk.scored_count
        self.rejected += len(chunk.rejected)
        self.read += chunk.scored_count + len(chunk.rejected)
        self.reasons.update(chunk.reasons)
        self.outside_rows += chunk.outside_rows
        self.outside.update(chunk.outside)

    def outside_counted(self) -> dict[str, Any]:
        return {"rows": self.outside_rows, "by_feature": dict(sorted(self.outside.items()))}

    def reasons_counted(self) -> list[dict[str, Any]]:
        ordered = sorted(self.reasons.items(), key=lambda item: (item[0][0] or "", item[0][1]))
        return [{"field": key[0], "reason": key[1], "rows": count} for key, count in ordered]


@dataclass(frozen=True)
class ScoredChunk:
    """One chunk's outputs: scored rows as CSV, rejected rows in order, reasons counted."""

    scored_csv: bytes
    scored_count: int
    rejected: list[list[Any]]
    reasons: Counter[tuple[str | None, str]]
    outside_rows: int = 0
    outside: Counter[str] = field(default_factory=Counter)


def score_chunk(chunk: Chunk, layout: Layout, model: LoadedModel, options: Options) -> ScoredChunk:
    """Validate and predict one chunk; every row lands in exactly one of the two outputs."""
    cells = _model_cells(chunk, layout, model.schema.numeric_names)
    rows = Rows.of_columns(cells, len(chunk.lines), allow_extra=True)
    try:
        prediction = predict(model, rows, options, all_or_nothing=False)
    except InvalidInput as exc:
        details = "; ".join(problem.reason for problem in exc.problems)
        raise FileProblem(OPTIONS_UNAVAILABLE, f"{exc.message}: {details}") from exc
    problems: dict[int, list[Problem]] = {}
    for problem in prediction.problems:
        if problem.row is not None:  # every column is present, so every problem has a row
            problems.setdefault(problem.row, []).append(problem)
    valid = np.zeros(len(chunk.lines), dtype=bool)
    valid[np.asarray(prediction.positions, dtype=int)] = True
    neutral = _neutral(chunk, layout.dialect)
    rejected, reasons = _rejected(chunk, layout, neutral, problems)
    predictions = list(prediction.columns().values())
    scored = _scored_csv(chunk, neutral, valid, predictions, layout.dialect)
    outside = prediction.outside
    return ScoredChunk(
        scored,
        int(valid.sum()),
        rejected,
        reasons,
        int(np.count_nonzero(outside.any())) if outside else 0,
        Counter({k: v for k, v in outside.counts().items() if v}) if outside else Counter(),
    )


def _model_cells(
    chunk: Chunk, layout: Layout, numeric: Collection[str]
) -> dict[str, Sequence[Any]]:
    """The model's columns; the `numeric` ones as floats where the chunk can read them so, or
    else with the file's decimal mark read."""
    dialect = layout.dialect
    return {
        name: dialect.numbers_read(chunk.column(at, True)) if name in numeric else chunk.column(at)
        for name, at in layout.positions.items()
    }


def _neutral(chunk: Chunk, dialect: Dialect) -> list[list[str]] | None:
    """`neutral_columns`, or None for a grid none of whose cells starts like a formula: its
    rows' text is then written out as it is, and its cells are never split."""
    if chunk.grid is not None and not chunk.grid.any_cell_starts(_FORMULA_BYTES):
        return None
    return neutral_columns(chunk, dialect.separator)


def _scored_csv(
    chunk: Chunk,
    neutral: Sequence[list[str]] | None,
    valid: np.ndarray,
    predictions: list[Any],
    dialect: Dialect,
) -> bytes:
    """The valid rows as uploaded (neutralised), then their predictions; CRLF line ends.

    Rows read as plain text are written back as they were read, which is what the csv module
    writes for cells without quotes, separators or line ends. `neutral` None: no cell changed.
    """
    keep = valid.tolist()
    cells = [codecs.appended_cells(values, dialect) for values in predictions]
    if chunk.text is None or (
        neutral is not None
        and any(n is not c and n != c for n, c in zip(neutral, chunk.columns, strict=True))
    ):
        assert neutral is not None
        columns = [itertools.compress(column, keep) for column in neutral]
        return encode_rows(zip(*columns, *cells, strict=True), dialect.separator)
    kept = list(itertools.compress(chunk.text, keep))
    return codecs.lines_with_cells(kept, cells, dialect.separator).encode("utf-8")


def _rejected(
    chunk: Chunk,
    layout: Layout,
    neutral: Sequence[Sequence[str]] | None,
    problems: Mapping[int, Sequence[Problem]],
) -> tuple[list[list[Any]], Counter[tuple[str | None, str]]]:
    """`line_number, reasons, cells...` for each rejected row, in file order; reasons counted.

    `neutral` None: the cells are the row's text split, as the reader would have split them."""
    rows: list[tuple[int, list[Any]]] = []
    reasons: Counter[tuple[str | None, str]] = Counter()
    for row, found in problems.items():
        line = chunk.lines[row]
        text = "; ".join(f"{problem.field}: {problem.reason}" for problem in found)
        cells = _row_cells(chunk, neutral, row)
        rows.append((line, [line, text, *cells]))
        reasons.update((problem.field, problem.reason) for problem in found)
    for line, cells in chunk.ragged:
        text = codecs.field_count(len(cells), len(layout.header))
        rows.append((line, [line, text, *map(neutralise, cells)]))
        reasons[(None, WRONG_FIELD_COUNT)] += 1
    rows.sort(key=lambda item: item[0])
    return [row for _, row in rows], reasons


def _row_cells(chunk: Chunk, neutral: Sequence[Sequence[str]] | None, row: int) -> list[str]:
    if neutral is not None:
        return [column[row] for column in neutral]
    assert chunk.text is not None
    return chunk.text[row].split(",")  # only a grid's rows, which are comma-separated


def neutral_columns(chunk: Chunk, separator: str = ",") -> list[list[str]]:
    """Every column neutralised; the columns themselves when no cell needs it (the norm).

    The cells of plain rows start a line or follow a separator, so the byte after each one in
    the rows' text tells whether any cell starts like a formula, in one pass with numpy.
    """
    if chunk.text is not None and not _starts_formula(chunk.text, separator):
        return chunk.columns
    return [neutralise_column(column) for column in chunk.columns]


def _starts_formula(lines: list[str], separator: str) -> bool:
    """Whether a cell of these plain lines (no quotes, no line ends) starts like a formula."""
    data = np.frombuffer(("\n" + "\n".join(lines)).encode("utf-8"), dtype=np.uint8)
    before = data[:-1]
    follows_separator = (before == _NEWLINE) | (before == ord(separator))
    return bool(_FORMULA_BYTES[data[1:][follows_separator]].any())


def neutralise_column(cells: list[str]) -> list[str]:
    """`neutralise` applied to a column; the column itself when no cell needs it (the norm)."""
    if not _FORMULA_LINE_START.search("\n".join(cells)):
        return cells
    return [neutralise(cell) for cell in cells]


def encode_rows(rows: Iterable[Sequence[Any]], separator: str = ",") -> bytes:
    """CSV with CRLF line ends (RFC 4180); floats in their shortest round-trip form."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=separator, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def score_stream(
    source: io.BufferedReader[Any],
    model: LoadedModel,
    options: Options,
    chunk_rows: int,
    write_scored: Callable[[bytes], None],
    write_rejected: Callable[[bytes], None],
    *,
    grids: bool = True,
    block_bytes: int = BLOCK_BYTES,
) -> Tally:
    """Stream a whole file through: at most `chunk_rows` rows are in memory at a time.

    `grids`: chunks of plain rows are read as grids (`CsvFile.chunks`); off, every cell is
    split, which gives the same bytes, slower (tests hold the two together). `block_bytes`: how
    much is read at a time; small in tests, so that rows and characters cross block ends.

    Raises FileProblem when the file cannot be scored as a whole (a CSV the layout refuses
    with the code and message a request body gets); errors of the sinks and of the source's
    storage pass through untouched.
    """
    file = CsvFile(source, block_bytes)
    try:
        header = file.header()
        if header is None:
            raise codecs.no_header()
        added = output_columns(model.schema, options)
        layout = read_layout(header, model.schema, added, file.dialect)
        separator = layout.dialect.separator
        write_scored(codecs.header_row(layout.scored_header, separator).encode("utf-8"))
        write_rejected(codecs.header_row(layout.rejected_header, separator).encode("utf-8"))
        tally = Tally()
        for chunk in file.chunks(len(header), chunk_rows, grids=grids):
            scored = score_chunk(chunk, layout, model, options)
            write_scored(scored.scored_csv)
            write_rejected(encode_rows(scored.rejected, separator))
            tally.add(scored)
        return tally
    except CsvRefused as exc:
        raise FileProblem(exc.code, exc.message) from exc
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise FileProblem(
            NOT_GZIP, f"the file starts like gzip but cannot be decompressed: {exc}"
        ) from exc
