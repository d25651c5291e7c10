"""The same row sent in every protocol gets the same answer: the same float, to the last bit,
and the same features named outside the training range (BigQuery's default output is the bare
value alone); or the same faults (row, field and reason).

    JSON             POST /                      {"instances": [{...}]}
    CSV              POST /                      header and one data row
    KServe V1        POST /v1/models/<m>:predict {"instances": [[values in feature order]]}
    Open Inference   POST /v2/models/<m>/infer   one tensor per feature
    BigQuery         POST /                      {"calls": [[values in feature order]]}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from shared.schema import MODELS as MODEL_LIST
from shared.schema import NumericFeature
from tests.http.support import (
    PREDICTION,
    RTOL,
    csv_body,
    csv_rows,
    features,
    outside,
    predicted,
)

SPELLINGS = {
    "female": "female",
    "F": "female",
    " Woman ": "female",
    "w": "female",
    "male": "male",
    "MAN": "male",
    "m ": "male",
    "Other": "other",
    "x": "other",
    "Non-Binary": "other",
    "diverse": "other",
}
RANGES = {  # the schemas' validation limits: every valid value
    feature.name: (feature.minimum, feature.maximum)
    for served in MODEL_LIST.values()
    for feature in served.schema.features
    if isinstance(feature, NumericFeature)
}


def number(low: float, high: float) -> st.SearchStrategy[Any]:
    """A number in range as a user sends it: an int, a float, or either as a string."""
    value = st.integers(math.ceil(low), math.floor(high)) | st.floats(low, high)
    return value | value.map(repr)


def valid_rows(name: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            feature: st.sampled_from(sorted(SPELLINGS))
            if feature == "gender"
            else number(*RANGES[feature])
            for feature in features(name)
        }
    )


# Values that break every numeric feature, and every category: they read the same in JSON
# and as CSV text (no booleans or nulls, which CSV cannot send).
BAD_NUMBERS = [-1, 1e8, "abc", "", " ", "nan", "-Infinity", "1e999", "0x1f", "42 years", "1_000"]
BAD_NUMBERS += ["١٢", "35,5", 'say "hi"', "\t", "12 \n 3"]
BAD_CATEGORIES = ["robot", "", " ", "maleish", "5", 5, "f f", "femme", "NULL"]


@st.composite
def bad_rows(draw: st.DrawFn, name: str) -> tuple[dict[str, Any], set[str]]:
    """A valid row with one or more of its values replaced by a bad one; and which."""
    row = draw(valid_rows(name))
    broken = draw(st.sets(st.sampled_from(features(name)), min_size=1))
    for feature in broken:
        pool = BAD_CATEGORIES if feature == "gender" else BAD_NUMBERS
        row[feature] = draw(st.sampled_from(pool))
    return row, broken


def canonical(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: SPELLINGS[v] if k == "gender" else float(v) for k, v in row.items()}


def every_protocol(client: TestClient, name: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row sent once in each protocol: each response."""
    values = [row[f] for f in features(name)]
    tensors = [
        {
            "name": feature,
            "shape": [1],
            "datatype": "BYTES" if feature == "gender" else "FP64",
            "data": [row[feature]],
        }
        for feature in features(name)
    ]
    header = list(reversed(features(name)))  # CSV columns may come in any order
    return {
        "json": client.post("/", json={"instances": [dict(row)]}),
        "csv": client.post(
            "/",
            content=csv_body(header, [[row[f] for f in header]]),
            headers={"Content-Type": "text/csv"},
        ),
        "v1": client.post(f"/v1/models/{name}:predict", json={"instances": [values]}),
        "v2": client.post(f"/v2/models/{name}/infer", json={"inputs": tensors}),
        "bigquery": client.post("/", json={"calls": [values]}),
    }


def prediction(protocol: str, response: Any, target: str) -> float:
    assert response.status_code == 200, (protocol, response.text)
    if protocol == "csv":
        return float(csv_rows(response.content)[0][target])
    body = response.json()
    if protocol == "v2":
        [output] = [o for o in body["outputs"] if o["name"] == target]
        return float(output["data"][0])
    return float(body["replies" if protocol == "bigquery" else "predictions"][0])


def flags(protocol: str, response: Any) -> list[str]:
    """The features the answer names outside the training range."""
    if protocol == "csv":
        cell = csv_rows(response.content)[0]["outside_training_range"]
    elif protocol == "v2":
        outputs = response.json()["outputs"]
        [output] = [o for o in outputs if o["name"] == "outside_training_range"]
        assert output["datatype"] == "BYTES"
        cell = output["data"][0]
    else:
        return list(response.json()["outside_training_range"][0])
    return cell.split(";") if cell else []


def as_text(error: Mapping[str, Any]) -> dict[str, Any]:
    """An error with each value received as text: CSV sends nothing else, so a category sent
    in JSON as the number 5 is received as 5 there and as "5" in CSV."""
    details = [
        {**d, "received": str(d["received"])} if "received" in d else d for d in error["details"]
    ]
    return {**error, "details": details}


def said(detail: Mapping[str, Any]) -> str:
    """A native detail as the one-line protocols write it: the reason, then what was received
    (as JSON) when the detail shows it."""
    if "received" not in detail:
        return str(detail["reason"])
    return f"{detail['reason']} (received {orjson.dumps(detail['received']).decode()})"


def one_line(response: Any, protocol: str) -> str:
    if protocol == "bigquery":
        assert response.status_code == 400, response.text
        return str(response.json()["errorMessage"])
    assert response.status_code == 422, (protocol, response.text)
    return str(response.json()["error"])


HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("name", ["customer_needs", "market_trend"])
@HYPOTHESIS
@given(data=st.data())
def test_a_valid_row_gets_the_same_float_in_every_protocol(
    clients: dict[str, TestClient], name: str, data: st.DataObject
) -> None:
    row = data.draw(valid_rows(name))

    responses = every_protocol(clients[name], name, row)

    found = {p: prediction(p, r, PREDICTION[name]) for p, r in responses.items()}
    assert len(set(found.values())) == 1, found
    assert found["json"] == pytest.approx(predicted(name, [canonical(row)])[0], rel=RTOL)
    named = {p: flags(p, responses[p]) for p in ("json", "csv", "v1", "v2")}
    assert named == dict.fromkeys(named, outside(name, canonical(row))), named


@pytest.mark.parametrize("name", ["customer_needs", "market_trend"])
@HYPOTHESIS
@given(data=st.data())
def test_a_bad_row_gets_the_same_faults_in_every_protocol(
    clients: dict[str, TestClient], name: str, data: st.DataObject
) -> None:
    row, broken = data.draw(bad_rows(name))

    responses = every_protocol(clients[name], name, row)

    native = {p: responses[p] for p in ("json", "csv")}
    for protocol, response in native.items():
        assert response.status_code == 422, (protocol, response.text)
    errors = {p: r.json()["error"] for p, r in native.items()}
    details = errors["json"]["details"]
    with_lines = {**errors["json"], "details": [{**d, "line": 2} for d in details]}
    assert as_text(errors["csv"]) == as_text(with_lines)
    assert {d["field"] for d in details} == broken
    assert {d["row"] for d in details} == {0}
    expected = (
        errors["json"]["message"]
        + ": "
        + "; ".join(f"row {d['row']}, {d['field']}: {said(d)}" for d in details)
    )
    for protocol in ("v1", "v2", "bigquery"):
        assert one_line(responses[protocol], protocol) == expected, protocol
