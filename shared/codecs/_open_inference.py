"""The Open Inference Protocol (KServe V2), JSON form: tensors in, tensors out.

One input tensor per feature, shape [n] or [n, 1], in any order; outputs are the target and,
when asked for, the interval bounds and contributions, each as an FP64 tensor of shape [n]
(a withheld bound is null), and `outside_training_range`, a BYTES tensor: per row, the features
outside the training range joined by ";", empty when none.
Every output the model metadata lists (`output_columns`) may be asked for by name alone: a
bound implies an interval, `base_value` or a contribution implies explanations
(`options_for_outputs`). Binary tensor data is refused with a clear message: only the JSON form
is served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.codecs._json import check_count
from shared.errors import BadRequest, InvalidInput, Problem
from shared.predict import OUTSIDE, Prediction, as_list, output_columns
from shared.schema import CategoricalFeature, ModelSchema
from shared.validation import Rows, unknown_reason

DATATYPES = {
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
}
BINARY_REFUSED = "binary tensor data is not supported; send JSON tensors (binary_data=False)"


@dataclass(frozen=True)
class InferRequest:
    rows: Rows
    parameters: Mapping[str, Any]
    outputs: tuple[str, ...] | None
    request_id: str | None = None


def decode_infer(document: object, schema: ModelSchema, max_instances: int) -> InferRequest:
    if not isinstance(document, dict):
        raise BadRequest("an inference request must be a JSON object")
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise BadRequest('"inputs" must be a non-empty list of tensors')
    parameters = _parameters(document.get("parameters"), "parameters")
    # Clients ask for binary outputs by default when no output is named; JSON answers them too.
    parameters.pop("binary_data_output", None)
    columns = dict(_tensor(item, position) for position, item in enumerate(inputs))
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise BadRequest("every input tensor must hold the same number of rows")
    rows = lengths.pop()
    check_count(rows, max_instances, exact=True)
    _check_names(columns, schema)
    request_id = document.get("id")
    return InferRequest(
        rows=Rows.of_columns(columns, rows),
        parameters=parameters,
        outputs=_requested_outputs(document.get("outputs"), schema),
        request_id=request_id if isinstance(request_id, str) else None,
    )


def encode_infer(
    prediction: Prediction,
    model_name: str,
    version: str,
    outputs: Sequence[str] | None,
    request_id: str | None,
) -> dict[str, Any]:
    """The outputs asked for (each one `decode_infer` let through), or every one predicted."""
    columns = prediction.columns()
    names = list(columns) if outputs is None else list(outputs)
    body: dict[str, Any] = {
        "model_name": model_name,
        "model_version": version,
        "outputs": [
            {
                "name": name,
                "shape": [len(prediction)],
                "datatype": _datatype(name),
                "data": _data(columns[name]),
            }
            for name in names
        ],
    }
    if request_id is not None:
        body["id"] = request_id
    return body


def model_metadata(schema: ModelSchema, model_name: str, version: str) -> dict[str, Any]:
    outputs = output_columns(schema)
    return {
        "name": model_name,
        "versions": [version],
        "platform": "sklearn",
        "inputs": [
            {
                "name": feature.name,
                "datatype": "BYTES" if isinstance(feature, CategoricalFeature) else "FP64",
                "shape": [-1],
            }
            for feature in schema.features
        ],
        "outputs": [{"name": name, "datatype": _datatype(name), "shape": [-1]} for name in outputs],
    }


def _datatype(output: str) -> str:
    return "BYTES" if output == OUTSIDE else "FP64"


def _data(values: Any) -> list[Any]:
    """A tensor's data; a withheld bound (NaN in a batch) as null."""
    data = as_list(values) if not isinstance(values, list) else values
    return [None if isinstance(v, float) and v != v else v for v in data]


def _tensor(item: object, position: int) -> tuple[str, list[Any]]:
    where = f"inputs[{position}]"
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise BadRequest(f"{where} must be an object with a name")
    name = item["name"]
    if _parameters(item.get("parameters"), f"{where}.parameters").get("binary_data_size"):
        raise BadRequest(BINARY_REFUSED)
    datatype = item.get("datatype")
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise BadRequest(f"input {name!r}: unknown datatype {str(item.get('datatype'))[:20]!r}")
    shape = item.get("shape")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= 2
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
        or (len(shape) == 2 and shape[1] != 1)
    ):
        raise BadRequest(f"input {name!r}: shape must be [n] or [n, 1]")
    if "data" not in item:
        raise BadRequest(f"input {name!r} has no data (binary data is not supported)")
    values = _flatten(item["data"])
    if len(values) != shape[0]:
        raise BadRequest(f"input {name!r}: shape says {shape[0]} rows, data has {len(values)}")
    return name, values


def _flatten(data: object) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def _check_names(columns: Mapping[str, Any], schema: ModelSchema) -> None:
    names = schema.feature_names
    problems = [
        Problem(None, name, unknown_reason(name, names, "unknown input"))
        for name in columns
        if name not in names
    ]
    problems += [
        Problem(None, name, "missing input") for name in schema.feature_names if name not in columns
    ]
    if problems:
        raise InvalidInput("inputs do not match the model", tuple(problems))


def _parameters(raw: object, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BadRequest(f'"{where}" must be an object')
    return dict(raw)


def _requested_outputs(raw: object, schema: ModelSchema) -> tuple[str, ...] | None:
    """The names asked for, each one the model metadata lists; None when none is named."""
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise BadRequest('"outputs" must be a list')
    names = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise BadRequest("each requested output must be an object with a name")
        if _parameters(item.get("parameters"), "outputs.parameters").get("binary_data"):
            raise BadRequest(BINARY_REFUSED)
        names.append(item["name"])
    known = output_columns(schema)
    reason = f"no such output; the model's outputs are {', '.join(known)}"
    unknown = tuple(Problem(None, f"outputs.{n[:100]}", reason) for n in names if n not in known)
    if unknown:
        raise InvalidInput("unknown output requested", unknown)
    return tuple(names)
