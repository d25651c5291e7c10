"""tritonclient's HTTP client against both functions: the Open Inference Protocol as Triton
tooling speaks it, JSON tensors only (`binary_data=False`)."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from shared.predict._explain import shapley
from shared.store import LoadedModel, load_current
from tests import expected as reference
from tests.integration.conftest import (
    BUNDLED,
    MODELS,
    TARGETS,
    StartFunction,
    bundled_version,
    new_bucket,
    publish_all,
)
from tests.integration.support import FakeGcs, FunctionServer

OUTSIDE = "outside_training_range"
ROWS = {
    "customer_needs": pd.DataFrame(
        {
            "age": [35.0, 61.0, 18.0],
            "gender": ["female", "male", "other"],
            "income": [52000.0, 90000.5, 0.0],  # 0: below any income fit on
        }
    ),
    "market_trend": pd.DataFrame(
        {"sales": [9000.0, 4000.5], "population": [300.5, 200.0], "gdp": [13000.0, 6000.0]}
    ),
}
# One row out of range and one unknown category (customer_needs), one non-finite value.
BAD_ROWS = {
    "customer_needs": (
        pd.DataFrame({"age": [35.0, 300.0], "gender": ["female", "robot"], "income": [1.0, 1.0]}),
        ["row 1, age: must be between 18 and 100", "row 1, gender: must be one of"],
    ),
    "market_trend": (
        pd.DataFrame({"sales": [9000.0, 1.0], "population": [300.0, 2.0], "gdp": [1.0, -5.0]}),
        ["row 1, gdp: must be between"],
    ),
}


@functools.cache
def bundled(name: str) -> LoadedModel:
    return load_current(BUNDLED, name)


def expected(name: str, rows: pd.DataFrame) -> np.ndarray:
    """The bundled model's own in-process predictions, raised to the target's minimum."""
    model = bundled(name)
    values = model.pipeline.predict(rows[list(model.schema.feature_names)])
    return np.array([reference.in_domain(model.metadata, float(v)) for v in values])


def expected_bounds(name: str, rows: pd.DataFrame, level: float) -> np.ndarray:
    """Lower and upper per row by the normalised split-conformal definition; NaN (what the
    client reads a null as) where the interval is withheld."""
    records = rows.to_dict("records")
    found = reference.intervals(bundled(name).metadata, records, expected(name, rows), level)
    return np.array([(np.nan, np.nan) if b is None else b for b in found], dtype=float)


def tensors(rows: pd.DataFrame, *, binary_data: bool = False) -> list[triton.InferInput]:
    """One input per feature: BYTES for categories (numpy object arrays), FP64 for numbers."""
    inputs = []
    for name in rows.columns:
        if pd.api.types.is_numeric_dtype(rows[name]):
            values, datatype = rows[name].to_numpy(dtype=np.float64), "FP64"
        else:
            values, datatype = np.array(list(rows[name]), dtype=object), "BYTES"
        tensor = triton.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=binary_data)
        inputs.append(tensor)
    return inputs


def as_text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def wanted(*names: str, binary_data: bool = False) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=binary_data) for name in names]


def connect(server: FunctionServer) -> triton.InferenceServerClient:
    """The client takes host:port without a scheme."""
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


@pytest.fixture(params=MODELS)
def model(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(
    running: dict[str, FunctionServer], model: str
) -> Iterator[triton.InferenceServerClient]:
    with connect(running[model]) as client:
        yield client


def test_server_and_model_are_live_and_ready(client, model):
    version = bundled_version(model)
    other = next(name for name in MODELS if name != model)

    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready(model)
    assert client.is_model_ready(model, version)
    assert not client.is_model_ready(model, "19990101T000000Z-00000000")
    assert not client.is_model_ready(other)


def test_model_metadata_lists_typed_inputs_outputs_and_the_live_version(client, model):
    schema = bundled(model).schema

    metadata = client.get_model_metadata(model)

    assert metadata["name"] == model
    assert metadata["versions"] == [bundled_version(model)]
    assert [(i["name"], i["datatype"]) for i in metadata["inputs"]] == [
        (name, "BYTES" if name == "gender" else "FP64") for name in schema.feature_names
    ]
    outputs = {o["name"]: o["datatype"] for o in metadata["outputs"]}
    assert outputs[schema.target] == "FP64"
    assert outputs[OUTSIDE] == "BYTES"
    assert {f"contribution_{name}" for name in schema.feature_names} <= set(outputs)
    assert client.get_model_metadata(model, bundled_version(model)) == metadata


def test_infer_matches_in_process_predictions(client, model):
    rows, target = ROWS[model], bundled(model).schema.target

    result = client.infer(model, tensors(rows), outputs=wanted(target), request_id="req-7")

    assert result.as_numpy(target) == pytest.approx(expected(model, rows), rel=1e-12)
    response = result.get_response()
    assert response["model_name"] == model
    assert response["model_version"] == bundled_version(model)
    assert response["id"] == "req-7"
    assert [o["name"] for o in response["outputs"]] == [target]
    assert result.get_output(target)["shape"] == [len(rows)]


def test_inputs_in_any_order_and_as_column_vectors(client, model):
    rows = ROWS[model]
    target = bundled(model).schema.target
    shuffled = rows[list(reversed(rows.columns))]
    inputs = tensors(shuffled)
    for tensor in inputs:
        tensor.set_shape([len(rows), 1])

    result = client.infer(model, inputs, outputs=wanted(target))

    assert result.as_numpy(target) == pytest.approx(expected(model, rows), rel=1e-12)


def test_interval_and_explanations_as_request_parameters(client, model):
    loaded, rows = bundled(model), ROWS[model]
    target, features = loaded.schema.target, list(loaded.schema.feature_names)
    names = [target, f"{target}_lower", f"{target}_upper", OUTSIDE, "base_value"]
    names += [f"contribution_{feature}" for feature in features]
    bounds = expected_bounds(model, rows, 0.9)
    flags = [";".join(reference.outside(loaded.metadata, r)) for r in rows.to_dict("records")]
    background = pd.DataFrame(loaded.metadata["explanations"]["background"])[features]
    base, contributions = shapley(loaded.pipeline.predict, rows[features], background, features)

    result = client.infer(
        model,
        tensors(rows),
        outputs=wanted(*names),
        parameters={"interval": 0.9, "explain": True},
    )

    predicted = expected(model, rows)
    assert result.as_numpy(target) == pytest.approx(predicted, rel=1e-12)
    np.testing.assert_allclose(result.as_numpy(f"{target}_lower"), bounds[:, 0], rtol=1e-12)
    np.testing.assert_allclose(result.as_numpy(f"{target}_upper"), bounds[:, 1], rtol=1e-12)
    assert [as_text(v) for v in result.as_numpy(OUTSIDE)] == flags
    assert result.as_numpy("base_value") == pytest.approx([base] * len(rows), rel=1e-12)
    for position, feature in enumerate(features):
        assert result.as_numpy(f"contribution_{feature}") == pytest.approx(
            contributions[:, position], rel=1e-9, abs=1e-9
        )


def test_a_bound_or_a_contribution_asked_for_by_name_alone(client, model):
    """As Triton tooling asks: outputs by name, no parameters of ours. A bound comes at the
    default level, 0.9."""
    loaded, rows = bundled(model), ROWS[model]
    target, feature = loaded.schema.target, loaded.schema.feature_names[-1]
    features = list(loaded.schema.feature_names)
    background = pd.DataFrame(loaded.metadata["explanations"]["background"])[features]
    _, contributions = shapley(loaded.pipeline.predict, rows[features], background, features)

    lower = client.infer(model, tensors(rows), outputs=wanted(f"{target}_lower"))
    both = client.infer(
        model, tensors(rows), outputs=wanted(f"contribution_{feature}", f"{target}_upper")
    )

    bounds = expected_bounds(model, rows, 0.9)
    assert [o["name"] for o in lower.get_response()["outputs"]] == [f"{target}_lower"]
    np.testing.assert_allclose(lower.as_numpy(f"{target}_lower"), bounds[:, 0], rtol=1e-12)
    assert [o["name"] for o in both.get_response()["outputs"]] == [
        f"contribution_{feature}",
        f"{target}_upper",
    ]
    np.testing.assert_allclose(both.as_numpy(f"{target}_upper"), bounds[:, 1], rtol=1e-12)
    assert both.as_numpy(f"contribution_{feature}") == pytest.approx(
        contributions[:, features.index(feature)], rel=1e-9, abs=1e-9
    )


def test_an_unknown_output_is_named(client, model):
    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, tensors(ROWS[model]), outputs=wanted("median"))

    assert raised.value.status() == "422"
    assert "outputs.median: no such output" in raised.value.message()


def test_bad_rows_raise_naming_the_row_and_field(client, model):
    rows, reasons = BAD_ROWS[model]

    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, tensors(rows), outputs=wanted(bundled(model).schema.target))

    assert raised.value.status() == "422"
    assert raised.value.message().startswith("1 of 2 rows are invalid: ")
    for reason in reasons:
        assert reason in raised.value.message()


def test_unknown_and_missing_inputs_are_named(client, model):
    rows = ROWS[model].rename(columns={ROWS[model].columns[0]: "colour"})

    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, tensors(rows), outputs=wanted(bundled(model).schema.target))

    assert raised.value.status() == "422"
    assert "colour: unknown input" in raised.value.message()
    assert f"{ROWS[model].columns[0]}: missing input" in raised.value.message()


def test_no_outputs_named_gets_every_output_as_json(client, model):
    rows, target = ROWS[model], bundled(model).schema.target

    result = client.infer(model, tensors(rows))

    np.testing.assert_allclose(result.as_numpy(target), expected(model, rows), rtol=1e-9)


@pytest.mark.parametrize("binary", ["inputs", "requested outputs"])
def test_binary_tensors_are_refused_with_a_clear_400(client, model, binary):
    rows, target = ROWS[model], bundled(model).schema.target
    outputs = {
        "inputs": wanted(target),
        "requested outputs": wanted(target, binary_data=True),
    }[binary]

    with pytest.raises(InferenceServerException) as raised:
        client.infer(model, tensors(rows, binary_data=binary == "inputs"), outputs=outputs)

    assert raised.value.status() == "400"
    assert "binary tensor data is not supported" in raised.value.message()
    assert "binary_data=False" in raised.value.message()


@pytest.mark.parametrize("model_name", MODELS)
def test_too_large_batch_is_refused_clearly(
    published: str, start_function: StartFunction, model_name: str
):
    server = start_function(TARGETS[model_name], MODEL_STORE=published, MAX_INSTANCES="2")
    target = bundled(model_name).schema.target
    rows = pd.concat([ROWS[model_name]] * 2, ignore_index=True)

    with connect(server) as client:
        with pytest.raises(InferenceServerException) as raised:
            client.infer(model_name, tensors(rows), outputs=wanted(target))
        within = client.infer(model_name, tensors(rows.iloc[:2]), outputs=wanted(target))

    assert raised.value.status() == "413"
    assert raised.value.message() == (
        f"at most 2 instances are accepted per request; this one has {len(rows)}; score larger "
        f"batches as a CSV file uploaded to incoming/{model_name}/ in the data bucket, or from "
        "BigQuery"
    )
    assert within.as_numpy(target) == pytest.approx(expected(model_name, rows.iloc[:2]))


@pytest.mark.parametrize("model_name", MODELS)
def test_storage_outage_before_first_load_is_not_ready_and_503(
    start_function: StartFunction, model_name: str
):
    storage = FakeGcs()  # its own emulator, so stopping it touches no other test
    storage.start()
    try:
        store = publish_all(storage, new_bucket(storage))
        server = start_function(
            TARGETS[model_name], MODEL_STORE=store, STORAGE_EMULATOR_HOST=storage.url
        )
        storage.stop()
        target = bundled(model_name).schema.target

        with connect(server) as client:
            live = client.is_server_live()
            server_ready = client.is_server_ready()
            model_ready = client.is_model_ready(model_name)
            with pytest.raises(InferenceServerException) as raised:
                client.infer(model_name, tensors(ROWS[model_name]), outputs=wanted(target))
    finally:
        storage.stop()

    assert live
    assert not server_ready
    assert not model_ready
    assert raised.value.status() == "503"
    assert raised.value.message() == "the model store did not answer in time"


def test_clients_for_each_model_reach_only_their_own_function(
    running: dict[str, FunctionServer],
):
    for model_name, server in running.items():
        other = next(name for name in MODELS if name != model_name)
        with connect(server) as client, pytest.raises(InferenceServerException) as raised:
            client.infer(other, tensors(ROWS[other]), outputs=wanted("x"))

        assert raised.value.status() == "404"
