"""openapi.yaml against the real functions.

Each kind of request goes to a real functions-framework server whose models come from the Cloud
Storage emulator, and each answer is validated against openapi.yaml with openapi-core. Then
schemathesis runs all of its checks against each function.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import yaml
from jsonschema import Draft202012Validator
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_core.deserializing.media_types.util import plain_loads

from shared.predict._intervals import max_level
from shared.store import publish
from tests import expected
from tests.integration.conftest import (
    BUNDLED,
    StartFunction,
    bundled_version,
    gcs_backend,
)
from tests.integration.support import REPO, FakeGcs, FunctionServer

SPEC_PATH = REPO / "openapi.yaml"
ALLOWED_ORIGIN = "https://app.example.com"
NOT_AVAILABLE = "not available for this model"
OUTSIDE = "outside_training_range"
WITHHELD = "outside the training range: not calibrated there"
TIMEOUT = 30
SCHEMATHESIS_EXAMPLES = 50
SCHEMATHESIS_SEED = 20261128
# What schemathesis and Hypothesis write into their working directory.
SCRATCH_NAMES = (".hypothesis", ".schemathesis", "schemathesis-report")


@dataclass(frozen=True)
class Function:
    name: str
    model: str
    target: str
    instance: dict[str, Any]
    respelled: dict[str, Any]
    """`instance` again, written with numeric strings and aliases."""
    out_of_range: dict[str, Any]
    """Every field wrong."""
    beyond_training: dict[str, Any]
    """Valid, but with features outside what the model was fit on."""

    @property
    def features(self) -> list[str]:
        return list(self.instance)

    @property
    def values(self) -> list[Any]:
        """`instance` as a list in feature order (KServe V1, BigQuery)."""
        return list(self.instance.values())


CUSTOMER_NEEDS = Function(
    name="predict_customer_needs",
    model="customer_needs",
    target="purchase_amount",
    instance={"age": 35, "gender": "female", "income": 52000},
    respelled={"age": " 35 ", "gender": "F", "income": "52000.0"},
    out_of_range={"age": 17, "gender": "robot", "income": -1},
    beyond_training={"age": 95, "gender": "female", "income": 5_000_000},
)
MARKET_TREND = Function(
    name="predict_market_trend",
    model="market_trend",
    target="future_sales",
    instance={"sales": 9000, "population": 300, "gdp": 13000},
    respelled={"sales": "9000", "population": " 3e2 ", "gdp": 13000.0},
    out_of_range={"sales": -1, "population": 1e6, "gdp": "lots"},
    beyond_training={"sales": 50_000, "population": 300, "gdp": 13000},
)


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    # openapi-core hands unknown media types over as bytes; CSV bodies are text.
    config = Config(extra_media_type_deserializers={"text/csv": plain_loads})
    return OpenAPI.from_file_path(str(SPEC_PATH), config=config)


@pytest.fixture(params=[CUSTOMER_NEEDS, MARKET_TREND], ids=lambda function: function.name)
def function(request: pytest.FixtureRequest) -> Function:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server(function: Function, running: dict[str, FunctionServer]) -> FunctionServer:
    return running[function.model]


# --- helpers ---------------------------------------------------------------------------------


def checked(openapi: OpenAPI, response: requests.Response) -> requests.Response:
    """`response`, once openapi-core has found it to be what openapi.yaml documents."""
    request = response.request
    if not isinstance(request.body, bytes | str | None):
        # A streamed body is gone once sent; the method and URL are what find the operation.
        request = request.copy()
        request.body = None
    openapi.validate_response(RequestsOpenAPIRequest(request), RequestsOpenAPIResponse(response))
    return response


def conforms_to_component(response: requests.Response, name: str) -> None:
    """For answers tied to no operation (404, 405): check them against components/responses."""
    spec = yaml.safe_load(SPEC_PATH.read_text())
    documented = _resolve(spec, spec["components"]["responses"][name])
    for header_name, header in documented.get("headers", {}).items():
        header = _resolve(spec, header)
        value = response.headers.get(header_name)
        if value is None:
            assert not header.get("required"), f"{name}: no {header_name} header"
        else:
            Draft202012Validator(header["schema"]).validate(value)
    assert response.headers["Content-Type"] == "application/json"
    body_schema = documented["content"]["application/json"]["schema"]
    Draft202012Validator({"$defs": {"spec": _into_defs(spec)}, **_into_defs(body_schema)}).validate(
        response.json()
    )


def _resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _into_defs(schema: Any) -> Any:
    """`schema` with its `#/...` references pointing into `$defs/spec`, a copy of the spec."""
    if isinstance(schema, dict):
        return {
            key: f"#/$defs/spec/{value[2:]}" if key == "$ref" else _into_defs(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_into_defs(item) for item in schema]
    return schema


def url(server: FunctionServer, function: Function, path: str = "") -> str:
    return f"{server.url}/{function.name}{path}"


def post_json(
    server: FunctionServer, function: Function, body: Any, path: str = "", **params: str
) -> requests.Response:
    return requests.post(url(server, function, path), json=body, params=params, timeout=TIMEOUT)


def post_csv(
    server: FunctionServer, function: Function, body: str, **params: str
) -> requests.Response:
    return requests.post(
        url(server, function),
        data=body.encode(),
        params=params,
        headers={"Content-Type": "text/csv"},
        timeout=TIMEOUT,
    )


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def tensors(function: Function, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open Inference Protocol input tensors, one per feature, alternating [n] and [n, 1]."""
    inputs = []
    for position, name in enumerate(function.features):
        values = [row[name] for row in rows]
        datatype = "BYTES" if isinstance(values[0], str) else "FP64"
        if position % 2:
            inputs.append(
                {
                    "name": name,
                    "datatype": datatype,
                    "shape": [len(rows), 1],
                    "data": [[v] for v in values],
                }
            )
        else:
            inputs.append(
                {"name": name, "datatype": datatype, "shape": [len(rows)], "data": values}
            )
    return inputs


def error_of(response: requests.Response) -> Any:
    return response.json()["error"]


def prediction_of(server: FunctionServer, function: Function) -> float:
    return float(post_json(server, function, function.instance).json()["predictions"][0])


def bundled_metadata(model: str) -> dict[str, Any]:
    return orjson.loads(BUNDLED.read(f"{model}/{bundled_version(model)}/metadata.json"))  # type: ignore[no-any-return]


def inside_and_beyond(function: Function) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """A row inside the training range and one beyond it, and the features outside of each."""
    rows = [function.instance, function.beyond_training]
    flags = [expected.outside(bundled_metadata(function.model), row) for row in rows]
    assert flags[0] == [], "the first row lies inside the training range"
    assert flags[1], "the second beyond it"
    return rows, flags


# --- predictions ---------------------------------------------------------------------------


def test_json_predictions_for_objects_lists_and_a_bare_instance(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    batch = checked(
        openapi,
        post_json(
            server,
            function,
            {"instances": [function.instance, function.respelled, function.values]},
        ),
    )
    bare = checked(openapi, post_json(server, function, function.instance))
    at_root = requests.post(server.url, json=function.instance, timeout=TIMEOUT)
    kserve = checked(
        openapi,
        post_json(
            server,
            function,
            {"instances": [function.values]},
            f"/v1/models/{function.model}:predict",
        ),
    )

    assert batch.status_code == 200, batch.text
    predictions = batch.json()["predictions"]
    assert predictions == pytest.approx([predictions[0]] * 3)
    assert batch.json()["outside_training_range"] == [[], [], []]
    assert batch.json()["model"] == {
        "name": function.model,
        "version": batch.headers["X-Model-Version"],
    }
    assert batch.headers["X-Model-Name"] == function.model
    assert bare.status_code == 200, bare.text
    assert bare.json()["predictions"] == pytest.approx(predictions[:1])
    assert at_root.status_code == 200, at_root.text
    assert at_root.json() == bare.json()
    assert kserve.status_code == 200, kserve.text
    assert kserve.json() == bare.json()


def test_options_add_an_interval_and_contributions(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    as_json = checked(
        openapi,
        post_json(
            server,
            function,
            {"instances": [function.instance], "parameters": {"interval": 0.9, "explain": True}},
        ),
    )
    as_csv = checked(
        openapi,
        post_csv(server, function, csv_text([function.instance]), interval="0.9", explain="1"),
    )
    too_high = checked(
        openapi,
        post_json(
            server,
            function,
            {"instances": [function.instance], "parameters": {"interval": 0.99999}},
        ),
    )

    assert as_json.status_code == 200, as_json.text
    [prediction] = as_json.json()["predictions"]
    value, interval = prediction[function.target], prediction["interval"]
    assert interval["level"] == 0.9
    assert interval["lower"] < value < interval["upper"]
    assert prediction["base_value"] + sum(prediction["contributions"].values()) == pytest.approx(
        value
    )
    assert as_csv.status_code == 200, as_csv.text
    header, row = csv_rows(as_csv.text)
    assert header == [
        *function.features,
        function.target,
        f"{function.target}_lower",
        f"{function.target}_upper",
        OUTSIDE,
        "base_value",
        *(f"contribution_{name}" for name in function.features),
    ]
    assert float(row[len(function.features)]) == pytest.approx(value)
    assert row[header.index(OUTSIDE)] == ""
    assert too_high.status_code == 422, too_high.text
    [detail] = error_of(too_high)["details"]
    assert detail["field"] == "parameters.interval"
    assert detail["reason"].startswith("at most ")


def test_options_a_model_was_published_without_answer_422(
    function: Function, gcs: FakeGcs, bucket: str, start_function: StartFunction, openapi: OpenAPI
) -> None:
    version = bundled_version(function.model)
    metadata = orjson.loads(BUNDLED.read(f"{function.model}/{version}/metadata.json"))
    bare_metadata = {
        key: value for key, value in metadata.items() if key not in ("intervals", "explanations")
    }
    artifact = BUNDLED.read(f"{function.model}/{version}/model.joblib")
    publish(gcs_backend(gcs, bucket), function.model, version, artifact, bare_metadata)
    server = start_function(function.name, MODEL_STORE=f"gs://{bucket}/models")
    sent = csv_text([function.instance])

    card = checked(openapi, requests.get(url(server, function), timeout=TIMEOUT))
    asked = {
        "interval": [
            post_json(
                server,
                function,
                {"instances": [function.instance], "parameters": {"interval": 0.9}},
            ),
            post_csv(server, function, sent, interval="0.9"),
        ],
        "explain": [
            post_json(
                server,
                function,
                {"instances": [function.instance], "parameters": {"explain": True}},
            ),
            post_csv(server, function, sent, explain="true"),
        ],
    }
    bigquery = checked(
        openapi,
        post_json(
            server,
            function,
            {"calls": [function.values], "userDefinedContext": {"output": "lower"}},
        ),
    )

    options = card.json()["options"]
    assert (options["interval"], options["explain"]) == (False, False)
    assert card.json()["intervals"] is None
    for option, responses in asked.items():
        for response in responses:
            checked(openapi, response)
            assert response.status_code == 422, response.text
            assert error_of(response)["details"] == [
                {"row": None, "field": f"parameters.{option}", "reason": NOT_AVAILABLE}
            ]
    assert bigquery.status_code == 400, bigquery.text
    assert NOT_AVAILABLE in bigquery.json()["errorMessage"]


def test_csv_comes_back_with_every_column_sent_and_a_prediction(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    # Columns in another order than the model's, and one the model does not use.
    columns = ["id", *reversed(function.features)]
    rows = [{"id": "a-1", **function.instance}, {"id": "b 2", **function.respelled}]
    sent = csv_text([{column: row[column] for column in columns} for row in rows])
    expected = prediction_of(server, function)

    response = checked(openapi, post_csv(server, function, sent))

    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["X-Model-Name"] == function.model
    returned, sent_rows = csv_rows(response.text), csv_rows(sent)
    assert returned[0] == [*sent_rows[0], function.target, OUTSIDE]
    assert [row[:-2] for row in returned[1:]] == sent_rows[1:]
    assert [float(row[-2]) for row in returned[1:]] == pytest.approx([expected, expected])
    assert [row[-1] for row in returned[1:]] == ["", ""]


def test_empty_batches_get_empty_answers(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    no_instances = checked(openapi, post_json(server, function, {"instances": []}))
    header_only = checked(openapi, post_csv(server, function, ",".join(function.features) + "\r\n"))
    no_calls = checked(openapi, post_json(server, function, {"calls": []}))

    assert no_instances.status_code == 200, no_instances.text
    assert no_instances.json()["predictions"] == []
    assert header_only.status_code == 200, header_only.text
    assert csv_rows(header_only.text) == [[*function.features, function.target, OUTSIDE]]
    assert no_calls.status_code == 200, no_calls.text
    assert no_calls.json() == {"replies": []}


def test_bigquery_batch_gets_replies_in_order(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    calls = [function.values, [None, *function.values[1:]], list(function.respelled.values())]
    expected = prediction_of(server, function)

    plain = checked(openapi, post_json(server, function, {"requestId": "r-1", "calls": calls}))
    lower = checked(
        openapi,
        post_json(
            server,
            function,
            {"calls": calls, "userDefinedContext": {"output": "lower", "interval_level": "0.8"}},
        ),
    )
    everything = checked(
        openapi,
        post_json(server, function, {"calls": calls, "userDefinedContext": {"output": "all"}}),
    )

    assert plain.status_code == 200, plain.text
    assert plain.json()["replies"] == [pytest.approx(expected), None, pytest.approx(expected)]
    assert lower.status_code == 200, lower.text
    assert lower.json()["replies"][1] is None
    assert lower.json()["replies"][0] < expected
    assert everything.status_code == 200, everything.text
    first = everything.json()["replies"][0]
    assert first["interval"]["level"] == 0.9
    assert set(first["contributions"]) == set(function.features)


def test_rows_beyond_the_training_range_are_flagged_as_documented(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    rows, flags = inside_and_beyond(function)
    interval = {"parameters": {"interval": 0.9}}
    calls = [list(row.values()) for row in rows]

    bare = checked(openapi, post_json(server, function, {"instances": rows}))
    with_interval = checked(openapi, post_json(server, function, {"instances": rows, **interval}))
    as_csv = checked(openapi, post_csv(server, function, csv_text(rows), interval="0.9"))
    infer = checked(
        openapi,
        post_json(
            server,
            function,
            {"inputs": tensors(function, rows), **interval},
            f"/v2/models/{function.model}/infer",
        ),
    )
    lower = checked(
        openapi,
        post_json(server, function, {"calls": calls, "userDefinedContext": {"output": "lower"}}),
    )
    every = checked(
        openapi,
        post_json(server, function, {"calls": calls, "userDefinedContext": {"output": "all"}}),
    )

    assert bare.status_code == 200, bare.text
    assert bare.json()["outside_training_range"] == flags
    assert with_interval.status_code == 200, with_interval.text
    inside, beyond = with_interval.json()["predictions"]
    assert [inside[OUTSIDE], beyond[OUTSIDE]] == flags
    assert inside["interval"]["lower"] is not None
    assert beyond["interval"] == {"level": 0.9, "lower": None, "upper": None, "withheld": WITHHELD}
    assert as_csv.status_code == 200, as_csv.text
    header, *cells = csv_rows(as_csv.text)
    by_name = [dict(zip(header, row, strict=True)) for row in cells]
    assert [row[OUTSIDE] for row in by_name] == [";".join(names) for names in flags]
    assert by_name[1][f"{function.target}_lower"] == by_name[1][f"{function.target}_upper"] == ""
    assert infer.status_code == 200, infer.text
    tensor = {output["name"]: output for output in infer.json()["outputs"]}
    assert tensor[OUTSIDE]["data"] == [";".join(names) for names in flags]
    assert tensor[f"{function.target}_upper"]["data"][1] is None
    assert lower.status_code == 200, lower.text
    assert lower.json()["replies"][0] == pytest.approx(inside["interval"]["lower"])
    assert lower.json()["replies"][1] is None
    assert every.status_code == 200, every.text
    assert [reply[OUTSIDE] for reply in every.json()["replies"]] == flags


def test_strict_refuses_rows_beyond_the_training_range_as_documented(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    rows, flags = inside_and_beyond(function)
    metadata = bundled_metadata(function.model)
    reasons = [expected.strict_reason(metadata, name) for name in flags[1]]
    strict = {"parameters": {"strict": True}}
    v1, v2 = f"/v1/models/{function.model}:predict", f"/v2/models/{function.model}/infer"

    calls = [list(row.values()) for row in rows]
    refused = {
        "JSON": post_json(server, function, {"instances": rows, **strict}),
        "CSV": post_csv(server, function, csv_text(rows), strict="true"),
        "V1": post_json(server, function, {"instances": rows, **strict}, v1),
        "V2": post_json(server, function, {"inputs": tensors(function, rows), **strict}, v2),
        "BigQuery": post_json(
            server, function, {"calls": calls, "userDefinedContext": {"strict": "TRUE"}}
        ),
    }
    inside_only = checked(openapi, post_json(server, function, {"instances": rows[:1], **strict}))
    not_strict = checked(
        openapi, post_csv(server, function, csv_text(rows), strict="false", explain="1")
    )

    for what, response in refused.items():
        assert response.status_code == (400 if what == "BigQuery" else 422), (what, response.text)
        checked(openapi, response)
    for what, line in (("JSON", {}), ("CSV", {"line": 3})):  # CSV: the header is line 1
        assert error_of(refused[what])["details"] == [
            {"row": 1, "field": name, "reason": reason, **line}
            for name, reason in zip(flags[1], reasons, strict=True)
        ], what
    for what in ("V1", "V2", "BigQuery"):
        body = refused[what].json()
        message = body["errorMessage"] if what == "BigQuery" else body["error"]
        for name, reason in zip(flags[1], reasons, strict=True):
            assert f"row 1, {name}: {reason}" in message, (what, message)
    assert inside_only.status_code == 200, inside_only.text
    assert inside_only.json()["outside_training_range"] == [[]]
    assert not_strict.status_code == 200, not_strict.text
    header, _, beyond = csv_rows(not_strict.text)
    assert beyond[header.index(OUTSIDE)] == ";".join(flags[1])


def test_get_answers_the_model_card_and_head_its_headers(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    card = checked(openapi, requests.get(url(server, function), timeout=TIMEOUT))
    head = checked(openapi, requests.head(url(server, function), timeout=TIMEOUT))

    assert card.status_code == 200, card.text
    assert card.json()["function"] == function.name
    assert [feature["name"] for feature in card.json()["features"]] == function.features
    metadata = bundled_metadata(function.model)
    assert card.json()["training_ranges"] == metadata["training"]["ranges"]
    assert card.json()["intervals"]["calibration_rows"] == len(metadata["intervals"]["scores"])
    assert card.json()["target"]["minimum"] == metadata["schema"]["target"]["minimum"]
    assert card.json()["options"]["strict"] is True  # the bundled models carry their ranges
    has_time = bool(metadata["schema"]["time"])
    assert (card.json()["metrics"]["backtest"] is not None) == has_time
    assert card.headers["X-Model-Version"] == card.json()["version"]
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["X-Model-Name"] == function.model
    assert head.headers["X-Model-Version"] == card.json()["version"]


def test_kserve_v1_and_open_inference_paths(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    model = f"/v2/models/{function.model}"
    expected = prediction_of(server, function)
    get = {
        path: checked(openapi, requests.get(url(server, function, path), timeout=TIMEOUT))
        for path in (
            "/v1/models",
            "/v1/models/" + function.model,
            "/v2",
            "/v2/health/live",
            "/v2/health/ready",
            model,
            model + "/ready",
        )
    }
    version = get[model].json()["versions"][0]
    infer = checked(
        openapi,
        post_json(
            server,
            function,
            {"id": "r-1", "inputs": tensors(function, [function.instance, function.respelled])},
            model + "/infer",
        ),
    )
    versioned = checked(
        openapi,
        post_json(
            server,
            function,
            {"inputs": tensors(function, [function.instance]), "parameters": {"interval": 0.9}},
            f"{model}/versions/{version}/infer",
        ),
    )
    other_version = checked(
        openapi, requests.get(url(server, function, f"{model}/versions/0/ready"), timeout=TIMEOUT)
    )
    by_inputs = checked(
        openapi,
        post_json(
            server,
            function,
            {"inputs": [function.instance]},
            f"/v1/models/{function.model}:predict",
        ),
    )
    bound_by_name = checked(
        openapi,
        post_json(
            server,
            function,
            {
                "inputs": tensors(function, [function.instance]),
                "outputs": [{"name": f"{function.target}_lower"}],
            },
            model + "/infer",
        ),
    )

    assert {path: response.status_code for path, response in get.items()} == dict.fromkeys(get, 200)
    assert get["/v1/models"].json() == {"models": [function.model]}
    assert get["/v1/models/" + function.model].json() == {"name": function.model, "ready": True}
    assert by_inputs.status_code == 200, by_inputs.text
    assert by_inputs.json()["predictions"] == pytest.approx([expected])
    assert bound_by_name.status_code == 200, bound_by_name.text
    [lower] = bound_by_name.json()["outputs"]
    assert (lower["name"], lower["datatype"]) == (f"{function.target}_lower", "FP64")
    assert lower["data"][0] < expected
    assert get["/v2/health/live"].json() == {"live": True}
    assert [tensor["name"] for tensor in get[model].json()["inputs"]] == function.features
    assert infer.status_code == 200, infer.text
    assert infer.json()["id"] == "r-1"
    prediction, flags = infer.json()["outputs"]
    assert prediction["name"] == function.target
    assert prediction["data"] == pytest.approx([expected, expected])
    assert flags == {"name": OUTSIDE, "shape": [2], "datatype": "BYTES", "data": ["", ""]}
    assert versioned.status_code == 200, versioned.text
    assert [tensor["name"] for tensor in versioned.json()["outputs"]] == [
        function.target,
        f"{function.target}_lower",
        f"{function.target}_upper",
        OUTSIDE,
    ]
    outputs = {tensor["name"]: tensor["datatype"] for tensor in get[model].json()["outputs"]}
    assert outputs.pop(OUTSIDE) == "BYTES"
    assert set(outputs.values()) == {"FP64"}
    assert other_version.status_code == 404, other_version.text
    assert isinstance(error_of(other_version), str)


def test_preflight_from_an_allowed_origin_a_refused_one_and_none(
    function: Function, published: str, start_function: StartFunction, openapi: OpenAPI
) -> None:
    server = start_function(
        function.name, MODEL_STORE=published, CORS_ALLOWED_ORIGINS=ALLOWED_ORIGIN
    )
    browser = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }

    def preflight(**headers: str) -> requests.Response:
        return checked(
            openapi, requests.options(url(server, function), headers=headers, timeout=TIMEOUT)
        )

    allowed = preflight(**browser, Origin=ALLOWED_ORIGIN)
    refused = preflight(**browser, Origin="https://elsewhere.example")
    no_origin = preflight()
    from_browser = checked(
        openapi,
        requests.post(
            url(server, function),
            json=function.instance,
            headers={"Origin": ALLOWED_ORIGIN},
            timeout=TIMEOUT,
        ),
    )

    assert allowed.status_code == 204, allowed.text
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "POST" in allowed.headers["Access-Control-Allow-Methods"]
    assert refused.status_code == 403, refused.text
    assert error_of(refused)["code"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert no_origin.status_code == 204, no_origin.text
    assert "Access-Control-Allow-Origin" not in no_origin.headers
    assert no_origin.headers["Allow"] == "GET, HEAD, POST, OPTIONS"
    assert from_browser.status_code == 200, from_browser.text
    assert from_browser.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert "X-Model-Version" in from_browser.headers["Access-Control-Expose-Headers"]


# --- errors --------------------------------------------------------------------------------


def error_requests(function: Function) -> list[tuple[str, dict[str, Any], int, str]]:
    """(what, requests.request arguments plus `path`, status, error code) of faulty requests.

    The code `kserve` stands for the `{"error": "..."}` body of the protocol paths, `bigquery`
    for `{"errorMessage": "..."}`.
    """
    v1, v2 = f"/v1/models/{function.model}", f"/v2/models/{function.model}"
    predict, infer = v1 + ":predict", v2 + "/infer"
    json_type, csv_type = {"Content-Type": "application/json"}, {"Content-Type": "text/csv"}
    instance, values, wrong = function.instance, function.values, function.out_of_range
    one_row = tensors(function, [instance])
    binary = [{**one_row[0], "parameters": {"binary_data_size": 8}}, *one_row[1:]]

    def case(what: str, status: int, code: str, method: str = "POST", path: str = "", **sent: Any):
        return what, {"method": method, "path": path, **sent}, status, code

    return [
        case("not JSON", 400, "bad_request", data=b"{not json", headers=json_type),
        case("a NaN literal", 400, "bad_request", data=b"[NaN]", headers=json_type),
        case("a JSON array", 400, "bad_request", json=[instance]),
        case("an unexpected key", 400, "bad_request", json={"instances": [], "extra": 1}),
        case("a short CSV row", 400, "bad_request", data="a,b\r\n1\r\n", headers=csv_type),
        case("CSV not in UTF-8", 400, "bad_request", data=b"\xff\xfe\x00", headers=csv_type),
        case(
            "a feature named twice in a CSV header",
            400,
            "bad_request",
            data=",".join([*function.features, function.features[0].upper()]) + "\r\n",
            headers=csv_type,
        ),
        case("a CSV header with no feature", 422, "invalid_input", data="a\r\n", headers=csv_type),
        case("no Content-Type", 415, "unsupported_media_type", data=b"{}"),
        case(
            "text/plain",
            415,
            "unsupported_media_type",
            data=b"{}",
            headers={"Content-Type": "text/plain"},
        ),
        case("values out of range", 422, "invalid_input", json=wrong),
        case("an unknown field", 422, "invalid_input", json={**instance, "colour": "red"}),
        case("a list too short", 422, "invalid_input", json={"instances": [values[:-1]]}),
        case(
            "an unknown parameter",
            422,
            "invalid_input",
            json={"instances": [], "parameters": {"t": 1}},
        ),
        case(
            "an invalid CSV option",
            422,
            "invalid_input",
            data=csv_text([instance]),
            headers=csv_type,
            params={"explain": "maybe"},
        ),
        case("an unknown path", 404, "not_found", "GET", "/nope"),
        case("another model under /v1", 404, "kserve", "GET", "/v1/models/other"),
        case("an unknown /v2 path", 404, "kserve", "GET", "/v2/nope"),
        case("PUT", 405, "method_not_allowed", "PUT", json=instance),
        case("DELETE under /v2", 405, "kserve", "DELETE", v2),
        case("GET of V1 predict", 405, "kserve", "GET", predict),
        case("a bare instance to V1", 400, "kserve", path=predict, json=instance),
        case("CSV to V1", 415, "kserve", path=predict, data=b"a\r\n", headers=csv_type),
        case(
            "XML to V1",
            415,
            "kserve",
            path=predict,
            data=b"<a/>",
            headers={"Content-Type": "application/xml"},
        ),
        case("V1 values out of range", 422, "kserve", path=predict, json={"instances": [wrong]}),
        case("no inputs", 400, "kserve", path=infer, json={"inputs": []}),
        case(
            "a short tensor",
            400,
            "kserve",
            path=infer,
            json={"inputs": [{**one_row[0], "shape": [2]}]},
        ),
        case("binary tensors", 400, "kserve", path=infer, json={"inputs": binary}),
        case("a missing input", 422, "kserve", path=infer, json={"inputs": one_row[1:]}),
        case(
            "an unknown output",
            422,
            "kserve",
            path=infer,
            json={"inputs": one_row, "outputs": [{"name": "median"}]},
        ),
        case("calls not a list", 400, "bigquery", json={"calls": {}}),
        case("a call too short", 400, "bigquery", json={"calls": [values[:-1]]}),
        case(
            "a BigQuery row out of range", 400, "bigquery", json={"calls": [list(wrong.values())]}
        ),
        case(
            "an unknown BigQuery output",
            400,
            "bigquery",
            json={"calls": [values], "userDefinedContext": {"output": "median"}},
        ),
    ]


def test_each_error_has_its_documented_status_and_body(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    for what, arguments, status, code in error_requests(function):
        path = arguments.pop("path", "")
        response = requests.request(url=url(server, function, path), timeout=TIMEOUT, **arguments)

        assert response.status_code == status, (what, response.text)
        if code == "kserve":
            assert isinstance(error_of(response), str), what
        elif code == "bigquery":
            assert set(response.json()) == {"errorMessage"}, what
        else:
            assert error_of(response)["code"] == code, what
        if status in (404, 405):
            conforms_to_component(response, "NotFound" if status == 404 else "MethodNotAllowed")
        else:
            checked(openapi, response)


def test_invalid_rows_list_every_field_at_fault(
    function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    response = checked(
        openapi,
        post_json(server, function, {"instances": [function.instance, function.out_of_range]}),
    )

    assert response.status_code == 422, response.text
    details = error_of(response)["details"]
    assert [(detail["row"], detail["field"]) for detail in details] == [
        (1, field) for field in function.features
    ]


@pytest.mark.parametrize(
    "what",
    [
        "a BigQuery argument that is a list",
        "a BigQuery interval_level of null",
        "an infer datatype that is an object",
    ],
)
def test_malformed_requests_get_an_error_not_a_crash(
    what: str, function: Function, server: FunctionServer, openapi: OpenAPI
) -> None:
    path, body = {
        "a BigQuery argument that is a list": ("", {"calls": [[*function.values[:-1], [1, 2]]]}),
        "a BigQuery interval_level of null": (
            "",
            {
                "calls": [function.values],
                "userDefinedContext": {"output": "lower", "interval_level": None},
            },
        ),
        "an infer datatype that is an object": (
            f"/v2/models/{function.model}/infer",
            {"inputs": [{**tensors(function, [function.instance])[0], "datatype": {}}]},
        ),
    }[what]

    response = post_json(server, function, body, path)

    assert response.status_code == 400, response.text
    checked(openapi, response)


def test_too_many_instances_or_bytes_answer_413(
    function: Function, published: str, start_function: StartFunction, openapi: OpenAPI
) -> None:
    server = start_function(
        function.name, MODEL_STORE=published, MAX_INSTANCES="2", MAX_BODY_BYTES="1024"
    )
    padded = json.dumps(function.instance).encode() + b" " * 2048
    as_json = {"Content-Type": "application/json"}
    three = [function.instance] * 3

    answers = {
        "3 instances": post_json(server, function, {"instances": three}),
        "3 CSV rows": post_csv(server, function, csv_text(three)),
        "a body over the limit": requests.post(
            url(server, function), data=padded, headers=as_json, timeout=TIMEOUT
        ),
        "a chunked body over the limit": requests.post(
            url(server, function), data=iter([padded]), headers=as_json, timeout=TIMEOUT
        ),
        "3 V1 instances": post_json(
            server, function, {"instances": three}, f"/v1/models/{function.model}:predict"
        ),
        "3 tensor rows": post_json(
            server,
            function,
            {"inputs": tensors(function, three)},
            f"/v2/models/{function.model}/infer",
        ),
    }
    bigquery = checked(openapi, post_json(server, function, {"calls": [function.values] * 3}))
    within = post_json(server, function, {"instances": three[:2]})

    for what, response in answers.items():
        assert response.status_code == 413, (what, response.text)
        checked(openapi, response)
    assert error_of(answers["3 instances"])["code"] == "payload_too_large"
    assert bigquery.status_code == 400, bigquery.text  # BigQuery would retry a 413
    assert "at most 2 calls" in bigquery.json()["errorMessage"]
    assert within.status_code == 200, within.text


def test_an_unpublished_model_answers_503_with_retry_after(
    function: Function, bucket: str, start_function: StartFunction, openapi: OpenAPI
) -> None:
    server = start_function(function.name, MODEL_STORE=f"gs://{bucket}/nothing-here")
    v2 = f"/v2/models/{function.model}"

    answers = {
        "GET": requests.get(url(server, function), timeout=TIMEOUT),
        "HEAD": requests.head(url(server, function), timeout=TIMEOUT),
        "POST": post_json(server, function, function.instance),
        "BigQuery": post_json(server, function, {"calls": [function.values]}),
        "V1 status": requests.get(
            url(server, function, f"/v1/models/{function.model}"), timeout=TIMEOUT
        ),
        "V2 ready": requests.get(url(server, function, v2 + "/ready"), timeout=TIMEOUT),
        "V2 metadata": requests.get(url(server, function, v2), timeout=TIMEOUT),
        "V2 infer": post_json(
            server, function, {"inputs": tensors(function, [function.instance])}, v2 + "/infer"
        ),
    }

    for what, response in answers.items():
        assert response.status_code == 503, (what, response.text)
        assert int(response.headers["Retry-After"]) > 0
        checked(openapi, response)
    assert error_of(answers["POST"])["code"] == "model_unavailable"
    assert "errorMessage" in answers["BigQuery"].json()
    assert answers["V2 ready"].json()["ready"] is False


# --- the document itself -------------------------------------------------------------------


def test_every_example_in_the_document_fits_its_schema() -> None:
    spec = yaml.safe_load(SPEC_PATH.read_text())
    media = [
        (name, content)
        for section in ("responses", "requestBodies")
        for name, item in spec["components"][section].items()
        for content in item.get("content", {}).values()
    ]
    media += [
        (f"{path} {method}", content)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "content" in operation.get("requestBody", {})
        for content in operation["requestBody"]["content"].values()
    ]
    checked_examples = 0

    for where, content in media:
        examples = [content["example"]] if "example" in content else []
        examples += [_resolve(spec, e)["value"] for e in content.get("examples", {}).values()]
        validator = Draft202012Validator(
            {"$defs": {"spec": _into_defs(spec)}, **_into_defs(content["schema"])}
        )
        for example in examples:
            errors = [error.message for error in validator.iter_errors(example)]
            assert not errors, (where, errors)
            checked_examples += 1

    assert checked_examples > 20, "the document's examples were found"


# --- schemathesis --------------------------------------------------------------------------


def contract_for(card: dict[str, Any], level_limit: float) -> dict[str, Any]:
    """openapi.yaml as schemathesis should hold the model behind `card` to.

    What the document cannot say exactly is left out or pinned, each for its reason:
    - CSV bodies and their query options: a JSON Schema cannot tie CSV cells to the columns a
      header names, nor query parameters to one media type (JSON requests ignore them);
      the tests above send CSV.
    - Interval levels: the highest level a model can promise depends on its calibration set
      (the 422 says so, see test_options_add_an_interval_and_contributions); levels here stay
      within `level_limit`.
    - The versioned V2 paths: positive cases use the live version (others answer 404).
    - `strict`: whether a row lies inside the training range is the model's to say, not the
      schema's, so schema-valid rows may rightly be refused with it; here it stays false (see
      test_strict_refuses_rows_beyond_the_training_range_as_documented).
    """
    options = card["options"]
    assert options["interval"], "fuzzing assumes intervals"
    assert options["explain"], "and explanations"
    contract = copy.deepcopy(yaml.safe_load(SPEC_PATH.read_text()))
    schemas = contract["components"]["schemas"]
    top = math.floor(level_limit * 100) / 100
    number = {"type": "number", "exclusiveMinimum": 0, "maximum": top}
    schemas["IntervalLevel"]["oneOf"][0] = number
    context_level = schemas["UserDefinedContext"]["anyOf"][1]["properties"]["interval_level"]
    hundredths = round(top * 100) - 90
    assert 0 <= hundredths <= 9, "BigQuery's default level 0.9 must be within the limit"
    context_level["oneOf"] = [
        number,
        {"type": "string", "pattern": rf"^\s*\+?0*\.([1-8][0-9]?|0[1-9]|9[0-{hundredths}]?)0*\s*$"},
    ]
    contract["components"]["parameters"]["Version"]["schema"] = {"enum": [card["version"]]}
    schemas["Strict"] = {**schemas["Strict"], "const": False}
    schemas["UserDefinedContext"]["properties"]["strict"] = {"enum": [False, "false"]}
    for item in contract["paths"].values():
        if "parameters" in item.get("post", {}):
            item["post"].pop("parameters")
            item["post"]["requestBody"]["content"].pop("text/csv")
    return contract


def level_limit(model: str) -> float:
    metadata = orjson.loads(BUNDLED.read(f"{model}/{bundled_version(model)}/metadata.json"))
    return max_level(len(metadata["intervals"]["scores"]))


@pytest.mark.parametrize("operations", ["all but infer", "infer"])
def test_schemathesis_finds_nothing(
    operations: str, function: Function, server: FunctionServer, tmp_path: Path
) -> None:
    card = requests.get(url(server, function), timeout=TIMEOUT).json()
    spec = tmp_path / "openapi.yaml"
    spec.write_text(
        yaml.safe_dump(contract_for(card, level_limit(function.model)), sort_keys=False)
    )
    if operations == "infer":
        # Every tensor must hold shape[0] values, and all the same number: no JSON Schema says
        # that, so schema-valid infer requests may rightly be refused.
        selection = ["--include-path-regex", f"^/{function.name}/.*/infer$"]
        selection += ["--exclude-checks", "positive_data_acceptance"]
    else:
        selection = [
            "--include-path-regex",
            f"^/{function.name}(/|$)",
            "--exclude-path-regex",
            "/infer$",
        ]
    scratch_before = {name for name in SCRATCH_NAMES if (REPO / name).exists()}
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", str(spec),
        "--url", server.url,
        "--checks", "all",
        *selection,
        "--max-examples", str(SCHEMATHESIS_EXAMPLES),
        "--seed", str(SCHEMATHESIS_SEED),
        "--continue-on-failure",
        "--generation-database", "none",
        "--request-timeout", "10",
        "--report-dir", str(tmp_path / "report"),
        "--no-color",
    ]  # fmt: skip

    run = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False
    )

    assert run.returncode == 0, run.stdout + run.stderr
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated is not None, run.stdout
    assert int(generated[1]) > 0, run.stdout
    assert {name for name in SCRATCH_NAMES if (REPO / name).exists()} == scratch_before
