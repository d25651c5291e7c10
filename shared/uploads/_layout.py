"""Where things are: the names of an upload's outputs and the identity stamped on them, and
where the model's columns sit in its rows (found as `shared.codecs.match_columns` finds them for
a request body)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.codecs import COMMAS, Dialect, match_columns
from shared.predict import Options
from shared.schema import ModelSchema
from shared.store import LoadedModel
from shared.uploads._events import MAX_NAME_BYTES, Ignored, Upload, storage_object

INCOMING, RESULTS, STAGING = "incoming/", "results/", "staging/"
LINE_COLUMN, REASONS_COLUMN = "line_number", "reasons"

_FORMULA_STARTS = frozenset("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")  # unambiguous


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
    """Where each feature sits in the file's rows, the output headers that follow, and how the
    file writes its cells (the outputs are written the same way)."""

    header: tuple[str, ...]
    positions: Mapping[str, int]
    added: tuple[str, ...]
    dialect: Dialect = COMMAS

    @property
    def scored_header(self) -> list[str]:
        return [neutralise(name) for name in self.header] + list(self.added)

    @property
    def rejected_header(self) -> list[str]:
        return [LINE_COLUMN, REASONS_COLUMN] + [neutralise(name) for name in self.header]


def read_layout(
    header: Sequence[str], schema: ModelSchema, added: Sequence[str], dialect: Dialect = COMMAS
) -> Layout:
    """Find the model's columns by name, in any order; extra columns are kept as they are.

    Raises `shared.codecs.CsvRefused` for a header without them (or with one twice, or with a
    column scoring adds).
    """
    positions = match_columns(header, schema.feature_names, added)
    return Layout(tuple(header), positions, tuple(added), dialect)
