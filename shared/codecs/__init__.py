"""Wire formats in and out: small pure functions from a body to `Rows`, and from a
`Prediction` to a body. No protocol knows another's layout; none of them computes anything.

    _json            {"instances": [...]} bodies (large batches straight into columns), and
                     JSON predictions
    _csv             CSV bodies and CSV answers (the rows as sent, predictions appended)
    _csv_layout      the one CSV layout (separator, decimal mark, header names, lines) and the
                     words a refused CSV gets, for request bodies and uploaded files alike
    _csv_reader      the one CSV reader, for request bodies and uploaded files alike
    _open_inference  Open Inference Protocol (KServe V2) tensors and metadata
    _bigquery        BigQuery remote-function calls and replies
    _model_card      what a GET answers
"""

from __future__ import annotations

from shared.codecs._bigquery import (
    SMALLER_BATCHES,
    Calls,
    decode_calls,
    encode_replies,
    is_bigquery_batch,
)
from shared.codecs._csv import (
    Table,
    appended_cells,
    cell_texts,
    encode_table,
    float_texts,
    lines_with_cells,
    read_csv,
)
from shared.codecs._csv_layout import (
    AMBIGUOUS_DELIMITER,
    COLUMN_CLASH,
    COMMAS,
    EMPTY,
    MISSING_COLUMNS,
    NOT_CSV,
    NOT_UTF8,
    REPEATED_COLUMN,
    WRONG_DELIMITER,
    CsvRefused,
    Dialect,
    dialect_of,
    field_count,
    header_row,
    match_columns,
    no_header,
)
from shared.codecs._csv_reader import Chunk, CsvFile, NotCsv, NotUtf8
from shared.codecs._json import (
    V1_ROWS_KEYS,
    Batch,
    Envelope,
    check_count,
    decode_instances,
    encode_json,
    envelope,
    instance_rows,
    json_answer,
    parse_json,
    v1_rows_key,
)
from shared.codecs._model_card import model_card
from shared.codecs._open_inference import (
    BINARY_REFUSED,
    InferRequest,
    decode_infer,
    encode_infer,
    model_metadata,
)

__all__ = [
    "AMBIGUOUS_DELIMITER",
    "BINARY_REFUSED",
    "COLUMN_CLASH",
    "COMMAS",
    "EMPTY",
    "MISSING_COLUMNS",
    "NOT_CSV",
    "NOT_UTF8",
    "REPEATED_COLUMN",
    "SMALLER_BATCHES",
    "V1_ROWS_KEYS",
    "WRONG_DELIMITER",
    "Batch",
    "Calls",
    "Chunk",
    "CsvFile",
    "CsvRefused",
    "Dialect",
    "Envelope",
    "InferRequest",
    "NotCsv",
    "NotUtf8",
    "Table",
    "appended_cells",
    "cell_texts",
    "check_count",
    "decode_calls",
    "decode_infer",
    "decode_instances",
    "dialect_of",
    "encode_infer",
    "encode_json",
    "encode_replies",
    "encode_table",
    "envelope",
    "field_count",
    "float_texts",
    "header_row",
    "instance_rows",
    "is_bigquery_batch",
    "json_answer",
    "lines_with_cells",
    "match_columns",
    "model_card",
    "model_metadata",
    "no_header",
    "parse_json",
    "read_csv",
    "v1_rows_key",
]
