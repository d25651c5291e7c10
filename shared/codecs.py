"""Wire formats <-> DataFrames: small pure functions, one per direction and format.

JSON requests follow the KServe V1 / Vertex shape `{"instances": [...], "parameters": {...}}`
(a bare object is one instance); CSV requests are a header row and data rows, read as text so
that columns the model does not use come back exactly as they were sent.
"""

from __future__ import annotations

import bisect
import collections
import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

import orjson

if TYPE_CHECKING:
    import pandas as pd

from shared.csv_chunks import CsvFile, NotCsv
from shared.errors import BadRequest, InvalidInput, PayloadTooLarge, Problem
from shared.records import ABSENT

CSV_BLOCK_ROWS = 10_000


@dataclass(frozen=True)
class Decoded:
    """A request body as rows of raw values plus the options asked for."""

    rows: pd.DataFrame
    parameters: Mapping[str, Any] = field(default_factory=dict)


def parse_json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"body is not valid JSON: {_json_error(exc)}") from exc


@dataclass(frozen=True)
class Envelope:
    """`{"instances": [...], "parameters": {...}}`, or one bare instance."""

    instances: list[object]
    parameters: Mapping[str, Any]


def envelope(document: object, max_instances: int) -> Envelope:
    if not isinstance(document, dict):
        raise BadRequest('body must be a JSON object: {"instances": [...]} or one instance')
    if "instances" in document:
        instances, parameters = document["instances"], document.get("parameters", {})
        unexpected = sorted(set(document) - {"instances", "parameters"})
        if unexpected:
            raise BadRequest(f"unexpected top-level keys: {', '.join(unexpected)}")
    else:
        instances, parameters = [document], {}
    if not isinstance(instances, list):
        raise BadRequest('"instances" must be a list of objects')
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise BadRequest('"parameters" must be an object')
    _check_count(len(instances), max_instances)
    return Envelope(instances, parameters)


def decode_json(body: bytes, max_instances: int, features: Sequence[str] | None = None) -> Decoded:
    parsed = envelope(parse_json(body), max_instances)
    return Decoded(rows=instances_frame(parsed.instances, features), parameters=parsed.parameters)


def instances_frame(
    instances: Sequence[object], features: Sequence[str] | None = None
) -> pd.DataFrame:
    """One row per instance, one column per key seen anywhere; `ABSENT` where a key is missing.

    With `features`, an instance may also be a list of values in that order (KServe V1 style).
    """
    import pandas as pd  # only the batch path builds frames

    objects = instance_objects(instances, features)
    keys = list(dict.fromkeys(key for item in objects for key in item))
    columns = {key: [item.get(key, ABSENT) for item in objects] for key in keys}
    return pd.DataFrame(columns, index=pd.RangeIndex(len(objects)), dtype=object)


def instance_objects(
    instances: Sequence[object], features: Sequence[str] | None = None
) -> list[dict[str, object]]:
    """The instances as objects; lists in feature order become objects when `features` is given."""
    kinds = set(map(type, instances))
    if kinds <= {dict}:  # the common request
        return list(cast(Sequence[dict[str, object]], instances))
    if features is not None and list in kinds:
        instances = [_as_object(item, features) for item in instances]
    wrong = [
        Problem(row, None, _shape_reason(item, features))
        for row, item in enumerate(instances)
        if not isinstance(item, dict)
    ]
    if wrong:
        raise InvalidInput("every instance must be a JSON object", tuple(wrong))
    return list(cast(Sequence[dict[str, object]], instances))


def _as_object(item: object, features: Sequence[str]) -> object:
    if isinstance(item, list) and len(item) == len(features):
        return dict(zip(features, item, strict=True))
    return item


def _shape_reason(item: object, features: Sequence[str] | None) -> str:
    if features is None:
        return "must be a JSON object"
    return f"must be a JSON object or a list of {len(features)} values ({', '.join(features)})"


@dataclass(frozen=True)
class Table:
    """A CSV body as text: the header and the data rows by column, every cell as sent.

    `text` holds each row as sent, when every row was plain (no quotes).
    """

    header: list[str]
    cells: list[list[str]]
    text: list[str] | None = None

    def __len__(self) -> int:
        return len(self.cells[0]) if self.cells else 0

    def columns(self) -> dict[str, list[str]]:
        return dict(zip(self.header, self.cells, strict=True))

    def frame(self) -> pd.DataFrame:
        import pandas as pd  # only the batch path builds frames

        index = pd.RangeIndex(len(self))
        return pd.DataFrame(self.columns(), index=index, dtype=object)


def decode_csv(body: bytes, max_instances: int) -> Decoded:
    """Rows of text; every cell kept as sent, empty cells as empty strings."""
    return Decoded(rows=read_csv(body, max_instances).frame())


def read_csv(body: bytes, max_instances: int) -> Table:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"CSV body is not UTF-8 (byte {exc.start})") from exc
    file = CsvFile.of_text(text)
    try:
        header = file.header()
        if not header or file.header_line != 1 or not any(name.strip() for name in header):
            raise BadRequest("CSV body is empty; expected a header row")
        _check_header(header)
        cells: list[list[str]] = [[] for _ in header]
        rows, texts, plain = 0, [], True
        # Blocks of rows at C speed; the row limit still stops the read early.
        for chunk in file.chunks(len(header), CSV_BLOCK_ROWS):
            if chunk.ragged:
                line, ragged = chunk.ragged[0]
                row = rows + bisect.bisect(chunk.lines, line)
                raise BadRequest(
                    f"CSV row {row} has {len(ragged)} fields; the header has {len(header)}"
                )
            rows += len(chunk.lines)
            _check_count(rows, max_instances)
            for column, values in zip(cells, chunk.columns, strict=True):
                column += values
            plain = plain and chunk.text is not None
            if plain and chunk.text is not None:
                texts += chunk.text
    except NotCsv as exc:
        raise BadRequest(f"CSV body cannot be parsed: {exc.reason} (line {exc.line})") from exc
    return Table(header, cells, texts if plain else None)


def encode_table(table: Table, added: Mapping[str, Any]) -> bytes:
    """The rows as sent with columns appended, written as pandas' CSV writer writes them.

    Plain rows are written back as they were sent, which is what a CSV writer writes for
    cells without quotes, commas or line ends.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*table.header, *added])
    appended = [float_texts(values) for values in added.values()]
    if table.text is None:
        writer.writerows(zip(*table.cells, *appended, strict=True))
        return out.getvalue().encode("utf-8")
    out.write(lines_with_cells(table.text, appended))
    return out.getvalue().encode("utf-8")


def lines_with_cells(lines: list[str], appended: Sequence[list[str]]) -> str:
    """Each line, then a comma and its cell of each appended column, then CRLF."""
    width = 2 * len(appended) + 2
    parts = [","] * (width * len(lines))
    parts[0::width] = lines
    for position, cells in enumerate(appended):
        parts[2 * position + 2 :: width] = cells
    parts[width - 1 :: width] = ["\r\n"] * len(lines)
    return "".join(parts)


def float_texts(values: Any) -> list[str]:
    """repr() of each float: the shortest text that reads back as the same float.

    orjson writes the same text many times faster, except for magnitudes under 1e-4 (which it
    writes without an exponent) and for NaN and infinities.
    """
    import numpy as np  # batches only

    magnitude = np.abs(values)
    if np.isfinite(values).all() and not ((magnitude < 1e-4) & (magnitude > 0)).any():
        return orjson.dumps(values.tolist()).decode()[1:-1].split(",") if len(values) else []
    return list(map(repr, values.tolist()))


def encode_json(document: object) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY)


def encode_csv(rows: pd.DataFrame) -> bytes:
    return rows.to_csv(index=False, lineterminator="\r\n").encode("utf-8")


def _check_count(count: int, max_instances: int) -> None:
    if count > max_instances:
        raise PayloadTooLarge(f"at most {max_instances} instances are accepted per request")


def _check_header(header: list[str]) -> None:
    if any(not name.strip() for name in header):
        raise BadRequest("CSV header has an empty column name")
    repeated = sorted(name for name, count in collections.Counter(header).items() if count > 1)
    if repeated:
        raise BadRequest(f"CSV header repeats the column {repeated[0]!r}")


def _json_error(exc: orjson.JSONDecodeError) -> str:
    return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
