"""Where things are: the names of an upload's outputs and the identity stamped on them, and
where the model's columns sit in its rows."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.predict import Options
from shared.schema import ModelSchema
from shared.store import LoadedModel
from shared.uploads._events import MAX_NAME_BYTES, Ignored, Upload, storage_object
from shared.uploads._problems import (
    COLUMN_CLASH,
    MISSING_COLUMNS,
    REPEATED_COLUMN,
    WRONG_DELIMITER,
    FileProblem,
)

INCOMING, RESULTS, STAGING = "incoming/", "results/", "staging/"
LINE_COLUMN, REASONS_COLUMN = "line_number", "reasons"

_FORMULA_STARTS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")  # unambiguous
_OTHER_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "pipes"}


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
        "strict": "true" if options.strict else "false",
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
