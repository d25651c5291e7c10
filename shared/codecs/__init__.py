"""Wire formats in and out: small pure functions from a body to `Rows`, and from a
`Prediction` to a body. No protocol knows another's layout; none of them computes anything.

    _json            {"instances": [...]} bodies (large batches straight into columns), and
                     JSON predictions
    _csv             CSV bodies and CSV answers (the rows as sent, predictions appended)
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
    cell_texts,
    encode_table,
    float_texts,
    lines_with_cells,
    read_csv,
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
    "BINARY_REFUSED",
    "SMALLER_BATCHES",
    "V1_ROWS_KEYS",
    "Batch",
    "Calls",
    "Chunk",
    "CsvFile",
    "Envelope",
    "InferRequest",
    "NotCsv",
    "NotUtf8",
    "Table",
    "cell_texts",
    "check_count",
    "decode_calls",
    "decode_infer",
    "decode_instances",
    "encode_infer",
    "encode_json",
    "encode_replies",
    "encode_table",
    "envelope",
    "float_texts",
    "instance_rows",
    "is_bigquery_batch",
    "json_answer",
    "lines_with_cells",
    "model_card",
    "model_metadata",
    "parse_json",
    "read_csv",
    "v1_rows_key",
]
