"""The typed way into a JSON batch (`decode_instances`) answers exactly as the general way.

Each body goes both ways: `parse_json` -> `envelope` -> `instance_rows` -> `predict`, as the
handlers have always done it, and `decode_instances` -> `predict`, which hands every body it
does not take to the general way. The answers (bytes) or the errors (type, message, every
fault) must be the same. Well-formed batches must take the typed way (else this proves nothing);
then one row is spoiled, at a random position, in each way a client can spoil it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared import codecs
from shared.errors import MarketcastError
from shared.predict import invalid_rows, parse_options, predict
from shared.schema import NumericFeature
from shared.store import LoadedModel
from tests.unit.bundled import bundled

ROWS = 1500  # a body over codecs' TYPED_FROM_BYTES
MAX_INSTANCES = 10_000

Row = dict[str, Any]


def well_formed(model: LoadedModel, count: int, seed: int) -> list[Row]:
    """Valid rows as a client sends them: floats and ints, canonical categories, some outside
    the training range (the flags must agree too)."""
    rng = np.random.default_rng(seed)
    background = model.metadata["explanations"]["background"]
    rows: list[Row] = []
    for _ in range(count):
        row = background[int(rng.integers(len(background)))]
        rows.append({name: row[name] for name in model.schema.feature_names})
    for feature in model.schema.features:
        if isinstance(feature, NumericFeature):
            for row in rows[::3]:
                row[feature.name] = float(feature.minimum + rng.random() * 0.1)  # outside
            for row in rows[1::5]:
                row[feature.name] = int(max(feature.minimum, min(feature.maximum, 50)))
    return rows


def answer(rows: Any, parameters: Any = None) -> bytes:
    document: dict[str, Any] = {"instances": rows}
    if parameters is not None:
        document["parameters"] = parameters
    return json.dumps(document).encode()


def general(body: bytes, model: LoadedModel) -> Any:
    parsed = codecs.envelope(codecs.parse_json(body), MAX_INSTANCES)
    rows = codecs.instance_rows(parsed.instances, model.schema.feature_names)
    return respond(model, rows, parsed.parameters)


def typed(body: bytes, model: LoadedModel) -> Any:
    batch = codecs.decode_instances(body, model.schema, MAX_INSTANCES)
    if batch is None:
        return general(body, model)
    return respond(model, batch.rows, batch.parameters)


def respond(model: LoadedModel, rows: Any, parameters: Any) -> bytes:
    prediction = predict(model, rows, parse_options(parameters))
    if prediction.problems:
        raise invalid_rows(prediction.problems, rows.count)
    return codecs.encode_json(codecs.json_answer(prediction))


def outcome(way: Callable[[bytes, LoadedModel], Any], body: bytes, model: LoadedModel) -> Any:
    try:
        return way(body, model)
    except MarketcastError as exc:
        return type(exc).__name__, exc.message, exc.problems


def assert_agree(body: bytes, model: LoadedModel) -> Any:
    expected = outcome(general, body, model)
    assert outcome(typed, body, model) == expected
    return expected


MODELS = ["customer_needs", "market_trend"]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize(
    "parameters",
    [None, {}, {"interval": 0.9}, {"strict": True}, {"interval": 0.8, "strict": False}],
)
def test_a_well_formed_batch_takes_the_typed_way_and_answers_the_same(
    name: str, parameters: Any
) -> None:
    model = bundled(name)
    body = answer(well_formed(model, ROWS, seed=len(name)), parameters)

    assert codecs.decode_instances(body, model.schema, MAX_INSTANCES) is not None
    assert_agree(body, model)


def spoilers(numeric: str, category: str | None) -> dict[str, Callable[[Row], Any]]:
    """Ways to spoil one row (or to send it in another valid form); each returns the row."""

    def setting(field: str, value: Any) -> Callable[[Row], Any]:
        return lambda row: {**row, field: value}

    ways: dict[str, Callable[[Row], Any]] = {
        "out of range": setting(numeric, 1e9),
        "below range": setting(numeric, -5),
        "numeric string": setting(numeric, "42"),
        "text": setting(numeric, "many"),
        "bool": setting(numeric, True),
        "null": setting(numeric, None),
        "huge int": setting(numeric, 10**30),
        "integer": setting(numeric, 10**6),
        "negative zero": setting(numeric, -0.0),
        "list value": setting(numeric, [1, 2]),
        "object value": setting(numeric, {"a": 1}),
        "missing": lambda row: {k: v for k, v in row.items() if k != numeric},
        "unknown field": setting("email", "a@b.c"),
        "as a list": lambda row: list(row.values()),
        "wrong list": lambda row: [*row.values(), 1],
        "not an object": lambda row: "row",
        "null row": lambda row: None,
    }
    if category is not None:
        ways |= {
            "unknown category": setting(category, "robot"),
            "other spelling": setting(category, " F "),
            "alias": setting(category, "woman"),
            "number as category": setting(category, 3),
            "empty category": setting(category, ""),
            "null category": setting(category, None),
        }
    return ways


def spoiled_fields(model: LoadedModel) -> tuple[str, str | None]:
    """The first numeric field, and the first category (None for a model without one)."""
    features = model.schema.features
    numeric = next(f.name for f in features if isinstance(f, NumericFeature))
    category = next((f.name for f in features if not isinstance(f, NumericFeature)), None)
    return numeric, category


def spoil_cases() -> list[tuple[str, str]]:
    return [(name, kind) for name in MODELS for kind in spoilers(*spoiled_fields(bundled(name)))]


@pytest.mark.parametrize(("name", "kind"), spoil_cases())
@pytest.mark.parametrize("seed", [1, 2])
def test_one_spoiled_row_anywhere_answers_as_the_general_way(
    name: str, kind: str, seed: int
) -> None:
    model = bundled(name)
    rows: list[Any] = well_formed(model, ROWS, seed)
    position = int(np.random.default_rng(seed).integers(ROWS))
    rows[position] = spoilers(*spoiled_fields(model))[kind](rows[position])

    assert_agree(answer(rows), model)


def raw_bodies(model: LoadedModel) -> dict[str, bytes]:
    """Bodies json.dumps would not write: the JSON text itself is the point."""
    rows = well_formed(model, ROWS, seed=3)
    body = answer(rows)
    first = model.schema.feature_names[0]
    key = f'"{first}": '.encode()
    at = body.index(key, len(body) // 2)
    value_end = at + len(key) + body[at + len(key) :].index(b",")
    spliced = {
        "1e400": b"1e400",
        "NaN": b"NaN",
        "Infinity": b"-Infinity",
        "leading zero": b"01",
        "digits": b"1" * 400,
        "exponent": b"1E1",
        "negative zero int": b"-0",
        "duplicate key": b"1e9, " + key + b"30",
    }
    bodies = {
        name: body[: at + len(key)] + text + body[value_end:] for name, text in spliced.items()
    }
    bodies |= {
        "trailing text": body + b" x",
        "BOM": b"\xef\xbb\xbf" + body,
        "blanks around": b" \n" + body + b"\n ",
        "compact": json.dumps({"instances": rows}, separators=(",", ":")).encode(),
        "unknown top-level key": body[:-1] + b', "model": "x"}',
        "parameters null": body[:-1] + b', "parameters": null}',
        "parameters a list": body[:-1] + b', "parameters": [1]}',
        "parameters overflow": body[:-1] + b', "parameters": {"interval": 1e400}}',
        "unknown parameter": body[:-1] + b', "parameters": {"level": 0.9}}',
        "instances twice": body[:-1] + b', "instances": []}',
        "instances not a list": b'{"instances": {"a": 1}, "pad": "' + b"x" * 70_000 + b'"}',
        "bare object": b'{"' + first.encode() + b'": "' + b"x" * 70_000 + b'"}',
        "lone surrogate": body.replace(b'"', b'"\\ud800', 1),
        "invalid utf-8": body[:-2] + b'\xff"]}',
        "not json": b"x" * 70_000,
    }
    return bodies


@pytest.mark.parametrize("name", MODELS)
def test_unusual_json_text_answers_as_the_general_way(name: str) -> None:
    model = bundled(name)
    for label, body in raw_bodies(model).items():
        expected = outcome(general, body, model)
        assert outcome(typed, body, model) == expected, label


@pytest.mark.parametrize("name", MODELS)
def test_too_many_instances_is_refused_the_same_way(name: str) -> None:
    model = bundled(name)
    body = answer(well_formed(model, ROWS, seed=4))

    def general_small(b: bytes, m: LoadedModel) -> Any:
        return codecs.envelope(codecs.parse_json(b), ROWS - 1)

    def typed_small(b: bytes, m: LoadedModel) -> Any:
        return codecs.decode_instances(b, m.schema, ROWS - 1)

    expected = outcome(general_small, body, model)
    assert expected[0] == "PayloadTooLarge"
    assert outcome(typed_small, body, model) == expected


def test_small_bodies_and_few_rows_go_the_general_way() -> None:
    model = bundled("customer_needs")
    small = answer(well_formed(model, 10, seed=5))
    padded = answer(well_formed(model, 10, seed=5)).replace(b", ", b"," + b" " * 3000)

    assert codecs.decode_instances(small, model.schema, MAX_INSTANCES) is None
    assert len(padded) > 64 * 1024
    assert codecs.decode_instances(padded, model.schema, MAX_INSTANCES) is None
    assert_agree(padded, model)


def test_a_small_body_never_imports_msgspec() -> None:
    program = """
import sys
from shared import codecs
from shared.schema import CUSTOMER_NEEDS
body = b'{"instances": [{"age": 35, "gender": "f", "income": 52000}]}'
assert codecs.decode_instances(body, CUSTOMER_NEEDS, 100) is None
assert "msgspec" not in sys.modules
"""
    finished = subprocess.run(
        [sys.executable, "-c", program],
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
        check=False,
        capture_output=True,
    )

    assert finished.returncode == 0, finished.stderr.decode()[-2000:]


# --- KServe V1: the rows under "instances" or "inputs" -------------------------------------


def general_v1(body: bytes, model: LoadedModel) -> Any:
    document = codecs.parse_json(body)
    parsed = codecs.envelope(document, MAX_INSTANCES, codecs.v1_rows_key(document))
    rows = codecs.instance_rows(parsed.instances, model.schema.feature_names)
    return respond(model, rows, parsed.parameters)


def typed_v1(body: bytes, model: LoadedModel) -> Any:
    batch = codecs.decode_instances(body, model.schema, MAX_INSTANCES, codecs.V1_ROWS_KEYS)
    if batch is None:
        return general_v1(body, model)
    return respond(model, batch.rows, batch.parameters)


@pytest.mark.parametrize("name", MODELS)
def test_a_v1_inputs_batch_takes_the_typed_way_and_answers_as_instances_do(name: str) -> None:
    model = bundled(name)
    rows = well_formed(model, ROWS, seed=6)
    inputs = json.dumps({"inputs": rows, "parameters": {"interval": 0.9}}).encode()

    assert codecs.decode_instances(inputs, model.schema, MAX_INSTANCES, codecs.V1_ROWS_KEYS)
    assert codecs.decode_instances(inputs, model.schema, MAX_INSTANCES) is None  # root: no
    expected = outcome(general, answer(rows, {"interval": 0.9}), model)
    assert outcome(typed_v1, inputs, model) == outcome(general_v1, inputs, model) == expected


@pytest.mark.parametrize("name", MODELS)
def test_v1_bodies_the_typed_way_leaves_answer_as_the_general_way(name: str) -> None:
    model = bundled(name)
    rows = json.dumps(well_formed(model, ROWS, seed=7)).encode()
    bodies = {
        "both keys": b'{"instances": ' + rows + b', "inputs": ' + rows + b"}",
        "inputs null beside instances": b'{"instances": ' + rows + b', "inputs": null}',
        "inputs twice": b'{"inputs": ' + rows + b', "inputs": []}',
        "inputs as columns": b'{"inputs": {"a": [1]}, "pad": "' + b"x" * 70_000 + b'"}',
        "neither": b'{"parameters": {}, "pad": "' + b"x" * 70_000 + b'"}',
    }

    for label, body in bodies.items():
        typed_answer = outcome(typed_v1, body, model)
        assert typed_answer == outcome(general_v1, body, model), label
        if label == "inputs twice":  # the last one wins, both ways
            assert typed_answer == outcome(general, b'{"instances": []}', model), label
        else:
            assert typed_answer[0] == "BadRequest", label
