"""Uploaded CSV files: which upload an event names, the work on its rows, and its report.

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

A re-upload is a new generation of the same name and gets its own results folder. How files
are read and cells written: `shared.uploads._scoring`.

Retraining (`models.retraining`) reads its uploads from `training/` through the same event
parsing, and refuses a file it cannot use with the same FileProblem and codes.

    _events    which upload a finalized event names; the log fields of an upload
    _problems  FileProblem, the one error for a file that cannot be used, and its codes
    _layout    output names and identity; where the model's columns sit in a file's rows
    _scoring   a file streamed through the model: each row scored or rejected
    _report    report.json and the timings of its phases
    _workflow  one upload scored: staged, published create-if-absent, reported last; the only
               module that talks to storage, through the ObjectStore handed in
"""

from __future__ import annotations

from shared.uploads._events import (
    FINALIZED,
    MAX_NAME_BYTES,
    SUFFIXES,
    Ignored,
    Upload,
    is_too_old,
    parse_time,
    readable_id,
    storage_object,
)
from shared.uploads._layout import (
    OutputNames,
    neutralise,
    output_identity,
    output_names,
    parse_event,
    read_layout,
    staging_names,
)
from shared.uploads._problems import (
    AMBIGUOUS_DELIMITER,
    COLUMN_CLASH,
    EMPTY,
    INPUT_GONE,
    MISSING_COLUMNS,
    NOT_CSV,
    NOT_GZIP,
    NOT_UTF8,
    OPTIONS_UNAVAILABLE,
    OUTPUT_CONFLICT,
    REPEATED_COLUMN,
    UNKNOWN_MODEL,
    WRONG_DELIMITER,
    FileProblem,
)
from shared.uploads._report import Laps, encode_report, report
from shared.uploads._scoring import Tally, neutralise_column, score_stream
from shared.uploads._workflow import create_report, score_file

__all__ = [
    "AMBIGUOUS_DELIMITER",
    "COLUMN_CLASH",
    "EMPTY",
    "FINALIZED",
    "INPUT_GONE",
    "MAX_NAME_BYTES",
    "MISSING_COLUMNS",
    "NOT_CSV",
    "NOT_GZIP",
    "NOT_UTF8",
    "OPTIONS_UNAVAILABLE",
    "OUTPUT_CONFLICT",
    "REPEATED_COLUMN",
    "SUFFIXES",
    "UNKNOWN_MODEL",
    "WRONG_DELIMITER",
    "FileProblem",
    "Ignored",
    "Laps",
    "OutputNames",
    "Tally",
    "Upload",
    "create_report",
    "encode_report",
    "is_too_old",
    "neutralise",
    "neutralise_column",
    "output_identity",
    "output_names",
    "parse_event",
    "parse_time",
    "read_layout",
    "readable_id",
    "report",
    "score_file",
    "score_stream",
    "staging_names",
    "storage_object",
]
