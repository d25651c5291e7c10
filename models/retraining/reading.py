"""Reading a labelled upload: its bytes, capped at the run's row limit, then its columns, as
`python -m models train --data` reads a file. Streams come in; nothing here talks to storage."""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from typing import IO, cast

import pandas as pd

from models.retraining.report import TOO_MANY_ROWS
from shared import codecs
from shared.schema import ModelSchema
from shared.uploads import (
    EMPTY,
    NOT_CSV,
    NOT_GZIP,
    NOT_UTF8,
    FileProblem,
)

READ_CHUNK_BYTES = 1024 * 1024


class TooManyLines(Exception):
    """A file has more data lines than the run may take."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} data lines")
        self.limit = limit


def too_many_rows(limit: int, joined: int) -> FileProblem:
    """The refusal for a run over RETRAIN_MAX_ROWS, with the joined rows counted in."""
    if joined == 0:
        return FileProblem(
            TOO_MANY_ROWS,
            f"the file has more than {limit} data lines (RETRAIN_MAX_ROWS), more than one run "
            "can train on within the function's time and memory; upload a sample, or split it",
        )
    return FileProblem(
        TOO_MANY_ROWS,
        f"the file and the {joined} rows joined from the current model's training data have "
        f"more than {limit} data lines together (RETRAIN_MAX_ROWS), more than one run can "
        "train on within the function's time and memory; upload less, or set "
        "RETRAIN_JOIN_CURRENT to false",
    )


def read_capped(source: IO[bytes], max_rows: int) -> bytes:
    """The file's bytes (gunzipped when it starts like gzip), read no further than needed to
    know that it has more than `max_rows` data lines (TooManyLines).

    Lines are counted, not parsed: a quoted field holding a newline counts twice, so the count
    can only err towards refusing.
    """
    binary = source
    if _peek(source, 2) == b"\x1f\x8b":
        binary = cast(IO[bytes], gzip.GzipFile(fileobj=source, mode="rb"))
    chunks: list[bytes] = []
    newlines, last = 0, b"\n"
    try:
        while chunk := binary.read(READ_CHUNK_BYTES):
            chunks.append(chunk)
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
            if newlines - 1 > max_rows:
                raise TooManyLines(max_rows)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise FileProblem(
            NOT_GZIP, f"the file starts like gzip but cannot be decompressed: {exc}"
        ) from exc
    if newlines + (last != b"\n") - 1 > max_rows:
        raise TooManyLines(max_rows)
    return b"".join(chunks)


def _peek(source: IO[bytes], size: int) -> bytes:
    if isinstance(source, io.BufferedReader):
        return source.peek(size)[:size]
    start = source.tell()
    head = source.read(size)
    source.seek(start)
    return head


def parse_csv(data: bytes, schema: ModelSchema) -> pd.DataFrame:
    """The model's time columns (when it has them), feature columns and target, found by
    header name, in the layout a scored upload is read in (`shared.codecs`: commas, semicolons
    with decimal commas, or tabs; case, spaces and `_` in names ignored; other columns never
    loaded), refused in the same words."""
    wanted = [*schema.time, *schema.feature_names, schema.target]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FileProblem(NOT_UTF8, "the file is not UTF-8 text; save it as CSV UTF-8") from exc
    lines = (line for line in text.splitlines() if line.strip())
    first = next(lines, None)
    if first is None:
        raise FileProblem(EMPTY, "the file is empty; expected a header row and data rows")
    try:
        dialect = codecs.dialect_of(first, lines)
        header = next(csv.reader([first], delimiter=dialect.separator))
        positions = codecs.match_columns(header, wanted)
    except codecs.CsvRefused as exc:
        raise FileProblem(exc.code, exc.message) from exc
    return _columns(text, dialect, positions, wanted)


def _columns(
    text: str, dialect: codecs.Dialect, positions: dict[str, int], wanted: list[str]
) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=dialect.separator,
            decimal="," if dialect.decimal_comma else ".",
            usecols=sorted(positions.values()),
            header=0,
        )
    except pd.errors.ParserError as exc:
        raise FileProblem(NOT_CSV, f"the file is not valid CSV: {exc}") from exc
    by_position = dict(zip(sorted(positions.values()), frame.columns, strict=True))
    renamed = {by_position[at]: name for name, at in positions.items()}
    return frame.rename(columns=renamed)[wanted]
