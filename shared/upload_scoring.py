"""Scoring uploaded CSV files: which upload an event names, and the work on its rows.

Layout of the data bucket (everything outside `incoming/` is ignored, so the function never
triggers itself):

    incoming/<model>/<path>              an upload: <path> ends in .csv or .csv.gz (any case)
                                         and may have folders; <model> picks the model
    results/<model>/<path>/<generation>/
        scored.csv      the input columns as uploaded, then the prediction (and
                        <target>_lower, <target>_upper when an interval is configured)
        rejected.csv    line_number, reasons, then the input columns as uploaded
        report.json     event, input, model, row counts, reasons counted, timings; or the
                        problem that kept the whole file from being scored. Written last:
                        its presence means the outputs are complete.
    staging/<model>/<path>/<generation>/<attempt>/  outputs being written; removed after
                        publishing (a lifecycle rule can sweep what a crash leaves behind)

A re-upload is a new generation of the same name and gets its own results folder.

Files are UTF-8 (with or without BOM), CRLF or LF, gzip-compressed or not (recognised by their
first bytes); columns are matched by header name, ignoring case and surrounding spaces.
Line numbers are physical lines, header = line 1, counting newlines inside quoted fields.
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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
import orjson

from shared import codecs
from shared.codecs import Chunk, CsvFile, NotCsv, NotUtf8
from shared.errors import InvalidInput, Problem
from shared.predict import Options, as_list, output_columns, predict
from shared.schema import SCHEMAS, ModelSchema
from shared.store import LoadedModel
from shared.validation import Rows

FINALIZED = "google.cloud.storage.object.v1.finalized"
INCOMING, RESULTS, STAGING = "incoming/", "results/", "staging/"
SUFFIXES = (".csv", ".csv.gz")
MAX_NAME_BYTES = 1024  # Cloud Storage's limit on object names
LINE_COLUMN, REASONS_COLUMN = "line_number", "reasons"
WRONG_FIELD_COUNT = "wrong number of fields"

# Codes of whole-file problems, as they appear in report.json.
UNKNOWN_MODEL = "unknown_model"
INPUT_GONE = "input_gone"
EMPTY = "empty"
NOT_UTF8 = "not_utf8"
NOT_GZIP = "bad_gzip"
NOT_CSV = "bad_csv"
WRONG_DELIMITER = "wrong_delimiter"
MISSING_COLUMNS = "missing_columns"
REPEATED_COLUMN = "repeated_column"
COLUMN_CLASH = "column_clash"
OPTIONS_UNAVAILABLE = "options_unavailable"
OUTPUT_CONFLICT = "output_conflict"

_FORMULA_STARTS = frozenset("=+-@\t\r")
_FORMULA_LINE_START = re.compile(r"^[=+\-@\t\r]", re.MULTILINE)
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")  # unambiguous
_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


class FileProblem(Exception):
    """The file cannot be scored as a whole; the report says why and the event is done."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Ignored:
    """An event that names nothing to score; `reason` is safe to log."""

    reason: str


@dataclass(frozen=True)
class Upload:
    """One generation of one uploaded object, as a finalized event names it."""

    event_id: str
    event_time: datetime | None
    bucket: str
    name: str
    generation: int
    model: str
    relative_name: str  # the name below incoming/<model>/ (training/<model>/ for retraining)

    @property
    def known_model(self) -> bool:
        return self.model in SCHEMAS


@dataclass(frozen=True)
class OutputNames:
    scored: str
    rejected: str
    report: str


def parse_event(attributes: Mapping[str, Any], data: object) -> Upload | Ignored:
    """The upload a Cloud Storage event names, or why there is nothing to score."""
    upload = storage_object(attributes, data, INCOMING, Upload)
    if isinstance(upload, Upload) and (
        len(staging_names(upload, "0" * 32).rejected.encode()) > MAX_NAME_BYTES
    ):
        return Ignored("object name too long to name its outputs")
    return upload


U = TypeVar("U", bound=Upload)


def storage_object(
    attributes: Mapping[str, Any], data: object, prefix: str, kind: type[U]
) -> U | Ignored:
    """The file a finalized event names under `<prefix><model>/`, or why it is ignored."""
    if attributes.get("type") != FINALIZED:
        return Ignored(f"event type is not {FINALIZED}")
    if not isinstance(data, Mapping):
        return Ignored("event data is not a Cloud Storage object")
    bucket, name, generation = data.get("bucket"), data.get("name"), data.get("generation")
    if not isinstance(bucket, str) or not bucket or not isinstance(name, str):
        return Ignored("event data names no bucket and object")
    if not str(generation).isdigit():
        return Ignored("event data has no object generation")
    if not name.startswith(prefix):
        return Ignored(f"object is outside {prefix}")
    model, _, relative = name.removeprefix(prefix).partition("/")
    if not model or not relative or relative.endswith("/"):
        return Ignored(f"object is not a file in a {prefix}<model>/ folder")
    if not relative.lower().endswith(SUFFIXES):
        return Ignored("object is not a .csv or .csv.gz file")
    return kind(
        event_id=str(attributes.get("id", "")),
        event_time=parse_time(attributes.get("time")),
        bucket=bucket,
        name=name,
        generation=int(str(generation)),
        model=model,
        relative_name=relative,
    )


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 timestamp (a CloudEvent's `time`), or None when absent or unreadable."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def is_too_old(event_time: datetime | None, now: datetime, max_age_seconds: float) -> bool:
    """An event without a readable time is never too old: it is scored."""
    return event_time is not None and (now - event_time).total_seconds() > max_age_seconds


def output_names(upload: Upload) -> OutputNames:
    return _names(f"{RESULTS}{upload.model}/{upload.relative_name}/{upload.generation}/")


def staging_names(upload: Upload, attempt: str) -> OutputNames:
    """Where one attempt writes before publishing; unique per attempt, never read by people."""
    folder = f"{STAGING}{upload.model}/{upload.relative_name}/{upload.generation}/{attempt}/"
    return _names(folder)


def _names(folder: str) -> OutputNames:
    return OutputNames(
        scored=f"{folder}scored.csv",
        rejected=f"{folder}rejected.csv",
        report=f"{folder}report.json",
    )


def output_identity(model: LoadedModel, options: Options) -> dict[str, str]:
    """What decides an output's content besides the input: stamped on every output object.

    Two attempts with the same identity make the same rows, reasons and predictions (up to the
    last bits of a float on different hardware), so either's outputs may stand for both.
    """
    return {
        "model": model.name,
        "model-version": model.version,
        "model-sha256": model.sha256,
        "interval-level": "none" if options.interval is None else repr(options.interval),
    }


def neutralise(cell: str) -> str:
    """A text cell that a spreadsheet would run as a formula, made inert; numbers kept."""
    if cell and cell[0] in _FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


@dataclass(frozen=True)
class Layout:
    """Where each feature sits in the file's rows, and the output headers that follow."""

    header: tuple[str, ...]
    positions: Mapping[str, int]
    added: tuple[str, ...]

    @property
    def scored_header(self) -> list[str]:
        return [neutralise(name) for name in self.header] + list(self.added)

    @property
    def rejected_header(self) -> list[str]:
        return [LINE_COLUMN, REASONS_COLUMN] + [neutralise(name) for name in self.header]


def read_layout(header: Sequence[str], schema: ModelSchema, added: Sequence[str]) -> Layout:
    """Find the model's columns by name, in any order; extra columns are kept as they are."""
    wanted = {name.casefold(): name for name in schema.feature_names}
    positions: dict[str, int] = {}
    for position, raw in enumerate(header):
        feature = wanted.get(raw.strip().casefold())
        if feature is None:
            continue
        if feature in positions:
            raise FileProblem(
                REPEATED_COLUMN,
                f"the header names the column {feature} twice (columns {positions[feature] + 1} "
                f"and {position + 1}); keep one",
            )
        positions[feature] = position
    missing = [name for name in schema.feature_names if name not in positions]
    if missing:
        raise _missing_columns(header, schema, missing)
    present = {raw.strip().casefold() for raw in header}
    clashes = [name for name in added if name.casefold() in present]
    if clashes:
        raise FileProblem(
            COLUMN_CLASH,
            f"the header already has a column named {clashes[0]}, which scoring adds; "
            "rename or remove that column",
        )
    return Layout(header=tuple(header), positions=positions, added=tuple(added))


def _missing_columns(
    header: Sequence[str], schema: ModelSchema, missing: Sequence[str]
) -> FileProblem:
    expected = ", ".join(schema.feature_names)
    wanted = {name.casefold() for name in schema.feature_names}
    joined = ",".join(header)
    for delimiter, plural in _OTHER_DELIMITERS.items():
        cells = {cell.strip().casefold() for cell in joined.split(delimiter)}
        if delimiter in joined and wanted <= cells:
            return FileProblem(
                WRONG_DELIMITER,
                f"the header is separated by {plural}, not commas; save the file as "
                f"comma-separated CSV with the columns {expected}",
            )
    found = ", ".join(_shown(name) for name in header[:10]) + (", ..." if len(header) > 10 else "")
    return FileProblem(
        MISSING_COLUMNS,
        f"the header has no column {', '.join(missing)}; the first line must name the "
        f"columns {expected} (in any order; other columns are kept). Found: {found}",
    )


def _shown(name: str) -> str:
    return repr(name if len(name) <= 40 else name[:40] + "...")


@dataclass
class Tally:
    """Rows counted as they stream by: read = scored + rejected, always."""

    read: int = 0
    scored: int = 0
    rejected: int = 0
    reasons: Counter[tuple[str | None, str]] = field(default_factory=Counter)

    def add(self, chunk: ScoredChunk) -> None:
        self.scored += chunk.scored_count
        self.rejected += len(chunk.rejected)
        self.read += chunk.scored_count + len(chunk.rejected)
        self.reasons.update(chunk.reasons)

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


def score_chunk(chunk: Chunk, layout: Layout, model: LoadedModel, options: Options) -> ScoredChunk:
    """Validate and predict one chunk; every row lands in exactly one of the two outputs."""
    cells = {name: chunk.columns[at] for name, at in layout.positions.items()}
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
    neutral = [neutralise_column(column) for column in chunk.columns]
    rejected, reasons = _rejected(chunk, neutral, problems)
    scored = _scored_csv(chunk, neutral, valid, list(prediction.columns().values()))
    return ScoredChunk(scored, int(valid.sum()), rejected, reasons)


def _scored_csv(
    chunk: Chunk, neutral: Sequence[list[str]], valid: np.ndarray, predictions: list[Any]
) -> bytes:
    """The valid rows as uploaded (neutralised), then their predictions; CRLF line ends.

    Rows read as plain text are written back as they were read, which is what the csv module
    writes for cells without quotes, commas or line ends.
    """
    keep = valid.tolist()
    if chunk.text is None or any(
        n is not c and n != c for n, c in zip(neutral, chunk.columns, strict=True)
    ):
        columns = [itertools.compress(column, keep) for column in neutral]
        return encode_rows(zip(*columns, *map(as_list, predictions), strict=True))
    kept = list(itertools.compress(chunk.text, keep))
    cells = [codecs.float_texts(values, len(kept)) for values in predictions]
    return codecs.lines_with_cells(kept, cells).encode("utf-8")


def _rejected(
    chunk: Chunk, neutral: Sequence[Sequence[str]], problems: Mapping[int, Sequence[Problem]]
) -> tuple[list[list[Any]], Counter[tuple[str | None, str]]]:
    """`line_number, reasons, cells...` for each rejected row, in file order; reasons counted."""
    rows: list[tuple[int, list[Any]]] = []
    reasons: Counter[tuple[str | None, str]] = Counter()
    for row, found in problems.items():
        line = chunk.lines[row]
        text = "; ".join(f"{problem.field}: {problem.reason}" for problem in found)
        rows.append((line, [line, text, *(column[row] for column in neutral)]))
        reasons.update((problem.field, problem.reason) for problem in found)
    width = len(chunk.columns)
    for line, cells in chunk.ragged:
        text = f"has {len(cells)} fields; the header has {width}"
        rows.append((line, [line, text, *map(neutralise, cells)]))
        reasons[(None, WRONG_FIELD_COUNT)] += 1
    rows.sort(key=lambda item: item[0])
    return [row for _, row in rows], reasons


def neutralise_column(cells: list[str]) -> list[str]:
    """`neutralise` applied to a column; the column itself when no cell needs it (the norm)."""
    if not _FORMULA_LINE_START.search("\n".join(cells)):
        return cells
    return [neutralise(cell) for cell in cells]


def encode_rows(rows: Iterable[Sequence[Any]]) -> bytes:
    """CSV with CRLF line ends (RFC 4180); floats in their shortest round-trip form."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def score_stream(
    source: io.BufferedReader[Any],
    model: LoadedModel,
    options: Options,
    chunk_rows: int,
    write_scored: Callable[[bytes], None],
    write_rejected: Callable[[bytes], None],
) -> Tally:
    """Stream a whole file through: at most `chunk_rows` rows are in memory at a time.

    Raises FileProblem when the file cannot be scored as a whole; errors of the sinks and of
    the source's storage pass through untouched.
    """
    file = CsvFile(source)
    try:
        header = file.header()
        if header is None:
            raise FileProblem(EMPTY, "the file is empty; expected a header row and data rows")
        layout = read_layout(header, model.schema, output_columns(model.schema, options))
        write_scored(encode_rows([layout.scored_header]))
        write_rejected(encode_rows([layout.rejected_header]))
        tally = Tally()
        for chunk in file.chunks(len(header), chunk_rows):
            scored = score_chunk(chunk, layout, model, options)
            write_scored(scored.scored_csv)
            write_rejected(encode_rows(scored.rejected))
            tally.add(scored)
        return tally
    except NotUtf8 as exc:
        raise FileProblem(
            NOT_UTF8,
            f"the file is not UTF-8 text: invalid bytes near line {exc.line}; save it as CSV UTF-8",
        ) from exc
    except NotCsv as exc:
        raise FileProblem(
            NOT_CSV, f"the file is not valid CSV at line {exc.line}: {exc.reason}"
        ) from exc
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise FileProblem(
            NOT_GZIP, f"the file starts like gzip but cannot be decompressed: {exc}"
        ) from exc


def report(
    upload: Upload,
    *,
    model_version: str | None,
    options: Options,
    tally: Tally | None,
    problem: FileProblem | None,
    timings: Mapping[str, Any],
) -> dict[str, Any]:
    """What happened to one upload: outputs and counts, or the reason there are none."""
    names = output_names(upload)
    return {
        "status": "failed" if problem else "scored",
        "event": {
            "id": upload.event_id,
            "time": upload.event_time.isoformat() if upload.event_time else None,
        },
        "input": {
            "bucket": upload.bucket,
            "name": upload.name,
            "generation": str(upload.generation),
        },
        "model": {"name": upload.model, "version": model_version},
        "interval_level": options.interval,
        "rows": None
        if tally is None
        else {"read": tally.read, "scored": tally.scored, "rejected": tally.rejected},
        "rejection_reasons": None if tally is None else tally.reasons_counted(),
        "outputs": None if problem else {"scored": names.scored, "rejected": names.rejected},
        "problem": None if problem is None else {"code": problem.code, "message": problem.message},
        "timings": dict(timings),
    }


def encode_report(document: Mapping[str, Any]) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
