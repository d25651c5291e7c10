"""Reading a labelled upload: its bytes, capped at the run's row limit, then its columns, as
`python -m models train --data` reads a file. Streams come in; nothing here talks to storage."""

from __future__ import annotations

import gzip
import io
import zlib
from typing import IO, cast

import pandas as pd

from models.retraining.report import TOO_MANY_ROWS
from shared.schema import ModelSchema
from shared.uploads import (
    EMPTY,
    MISSING_COLUMNS,
    NOT_CSV,
    NOT_GZIP,
    NOT_UTF8,
    REPEATED_COLUMN,
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
    header name (case and surrounding spaces ignored; other columns are never loaded), read as
    `python -m models train --data` reads a file."""
    wanted = [*schema.time, *schema.feature_names, schema.target]
    folded = {name.casefold() for name in wanted}
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            encoding="utf-8-sig",
            usecols=lambda column: str(column).strip().casefold() in folded,
        )
    except pd.errors.EmptyDataError as exc:
        raise FileProblem(EMPTY, "the file is empty; expected a header row and data rows") from exc
    except UnicodeDecodeError as exc:
        raise FileProblem(NOT_UTF8, "the file is not UTF-8 text; save it as CSV UTF-8") from exc
    except pd.errors.ParserError as exc:
        raise FileProblem(NOT_CSV, f"the file is not valid CSV: {exc}") from exc
    found: dict[str, list[str]] = {}
    for column in frame.columns:
        found.setdefault(str(column).strip().casefold(), []).append(str(column))
    repeated = [columns for columns in found.values() if len(columns) > 1]
    if repeated:
        raise FileProblem(
            REPEATED_COLUMN,
            f"the header names one column more than once ({', '.join(repeated[0])}); keep one",
        )
    missing = [name for name in wanted if name.casefold() not in found]
    if missing:
        raise FileProblem(
            MISSING_COLUMNS,
            f"the header has no column {', '.join(missing)}; training data needs the columns "
            f"{', '.join(wanted)} (in any order; other columns are ignored)",
        )
    return frame.rename(columns={found[name.casefold()][0]: name for name in wanted})[wanted]
