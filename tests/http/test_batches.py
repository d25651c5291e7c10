"""Batches (more rows than the plain-Python path takes): the same 200 rows as JSON and as CSV
get the same answers and flags, and name the same rows when some are bad or, with `strict`,
outside the training range. A JSON batch large enough to be decoded straight into columns gets
what its rows get in small requests."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from models import data
from shared.codecs._json import TYPED_FROM_BYTES
from tests.http.support import (
    FAR_OUT,
    MODELS,
    PREDICTION,
    RTOL,
    bounds,
    bundled,
    csv_body,
    csv_rows,
    features,
    outside,
    predicted,
    strict_reason,
)

LARGE = 2_000  # over 64 KiB as JSON: decoded typed, straight into columns


def rows_of(name: str, count: int = 200) -> list[dict[str, Any]]:
    """Rows as a user's export holds them: numbers, and categories as the schema spells them."""
    table = (
        data.customers(count, seed=5, dirty=False)
        if name == "customer_needs"
        else data.markets(count)
    )
    return [
        dict(zip(features(name), row, strict=True))
        for row in table[features(name)].itertuples(index=False)
    ]


def as_json(client: TestClient, rows: list[dict[str, Any]], **parameters: Any) -> Any:
    return client.post("/", json={"instances": rows, "parameters": parameters})


def as_csv(client: TestClient, name: str, rows: list[dict[str, Any]], query: str = "") -> Any:
    header = ["id", *features(name)]
    body = csv_body(
        header, [[f"r{i}", *(row[f] for f in features(name))] for i, row in enumerate(rows)]
    )
    return client.post(f"/{query}", content=body, headers={"Content-Type": "text/csv"})


def with_lines(document: dict[str, Any]) -> dict[str, Any]:
    """A JSON error as a CSV body of the same rows gets it: each row's fault names its line too
    (the header is line 1, and these bodies have no blank lines or quoted line ends)."""
    error = document["error"]
    details = [{**d, "line": d["row"] + 2} for d in error["details"]]
    return {"error": {**error, "details": details}}


@pytest.mark.parametrize("name", MODELS)
def test_200_rows_get_the_same_answers_as_json_and_as_csv(
    clients: dict[str, TestClient], name: str
) -> None:
    rows = rows_of(name)

    by_json = as_json(clients[name], rows)
    by_csv = as_csv(clients[name], name, rows)

    assert by_json.status_code == by_csv.status_code == 200
    from_json = by_json.json()["predictions"]
    from_csv = [float(row[PREDICTION[name]]) for row in csv_rows(by_csv.content)]
    assert from_csv == from_json
    assert from_json == pytest.approx(predicted(name, rows), rel=RTOL)
    flags = by_json.json()["outside_training_range"]
    assert flags == [outside(name, row) for row in rows]
    assert [row["outside_training_range"] for row in csv_rows(by_csv.content)] == [
        ";".join(names) for names in flags
    ]
    assert [row["id"] for row in csv_rows(by_csv.content)] == [f"r{i}" for i in range(200)]


@pytest.mark.parametrize("name", MODELS)
def test_200_rows_get_the_same_intervals_as_json_and_as_csv(
    clients: dict[str, TestClient], name: str
) -> None:
    rows, target = rows_of(name), PREDICTION[name]
    if name == "customer_needs":  # its 200 rows all lie inside the training range
        rows[7] = FAR_OUT
    expected_bounds = bounds(name, rows, 0.9)
    assert None in expected_bounds, "some rows lie outside the training range"
    assert any(expected_bounds), "and some inside"

    by_json = as_json(clients[name], rows, interval=0.9).json()["predictions"]
    by_csv = csv_rows(as_csv(clients[name], name, rows, "?interval=0.9").content)

    expected = zip(predicted(name, rows), expected_bounds, strict=True)
    for answer, row, (value, interval) in zip(by_json, by_csv, expected, strict=True):
        assert float(row[target]) == answer[target] == pytest.approx(value, rel=RTOL)
        assert row["outside_training_range"] == ";".join(answer["outside_training_range"])
        if interval is None:
            assert row[f"{target}_lower"] == row[f"{target}_upper"] == ""
            assert answer["interval"]["lower"] is answer["interval"]["upper"] is None
        else:
            assert float(row[f"{target}_lower"]) == answer["interval"]["lower"]
            assert float(row[f"{target}_upper"]) == answer["interval"]["upper"]
            assert answer["interval"]["lower"] == pytest.approx(interval[0], rel=RTOL)
            assert answer["interval"]["upper"] == pytest.approx(interval[1], rel=RTOL)


def test_200_rows_with_bad_ones_name_the_same_rows_as_json_and_as_csv(
    customer: TestClient,
) -> None:
    rows = rows_of("customer_needs")
    rows[0] = {**rows[0], "age": 300}
    rows[150] = {**rows[150], "gender": "robot"}
    rows[199] = {**rows[199], "income": "lots"}

    by_json = as_json(customer, rows)
    by_csv = as_csv(customer, "customer_needs", rows)

    assert by_json.status_code == by_csv.status_code == 422
    assert by_csv.json() == with_lines(by_json.json())
    details = by_json.json()["error"]["details"]
    assert [(d["row"], d["field"]) for d in details] == [
        (0, "age"),
        (150, "gender"),
        (199, "income"),
    ]
    assert by_json.json()["error"]["message"] == "3 of 200 rows are invalid"


def test_200_rows_with_strict_name_the_rows_outside_the_same_as_json_and_as_csv(
    customer: TestClient,
) -> None:
    rows = rows_of("customer_needs")
    rows[3], rows[120] = FAR_OUT, {**rows[120], "income": 5_000_000}

    by_json = as_json(customer, rows, strict=True)
    by_csv = as_csv(customer, "customer_needs", rows, "?strict=true")

    assert by_json.status_code == by_csv.status_code == 422
    assert by_csv.json() == with_lines(by_json.json())
    details = by_json.json()["error"]["details"]
    assert [(d["row"], d["field"], d["reason"]) for d in details] == [
        (row, feature, strict_reason("customer_needs", feature))
        for row in (3, 120)
        for feature in outside("customer_needs", rows[row])
    ]
    assert by_json.json()["error"]["message"] == "2 of 200 rows are invalid"


@pytest.mark.parametrize("feature", ["sales", "population", "gdp"])
def test_a_zero_market_feature_is_refused_alone_and_in_a_batch(
    market: TestClient, feature: str
) -> None:
    # The forecast grows from ratios of the features: the schema admits positive values only,
    # and a zero is refused (422) the same way whichever path the request's size takes.
    zero = {"sales": 9000, "population": 300, "gdp": 13000, feature: 0}
    minimum = {f.name: f.minimum for f in bundled("market_trend").schema.features}
    assert minimum[feature] > 0

    alone = as_json(market, [zero])
    in_batch = as_json(market, [*rows_of("market_trend")[:99], zero])

    assert alone.status_code == in_batch.status_code == 422, alone.text
    assert [(d["row"], d["field"]) for d in alone.json()["error"]["details"]] == [(0, feature)]
    details = in_batch.json()["error"]["details"]
    assert [(d["row"], d["field"]) for d in details] == [(99, feature)]


@pytest.mark.parametrize("name", MODELS)
def test_a_large_json_batch_gets_what_its_rows_get_in_small_requests(
    clients: dict[str, TestClient], name: str
) -> None:
    rows = rows_of(name, LARGE)
    assert len(orjson.dumps({"instances": rows})) > TYPED_FROM_BYTES

    whole = as_json(clients[name], rows, interval=0.9)
    pieces = [as_json(clients[name], rows[i : i + 40], interval=0.9) for i in range(0, LARGE, 40)]

    assert whole.status_code == 200, whole.text
    assert {piece.status_code for piece in pieces} == {200}
    together = [answer for piece in pieces for answer in piece.json()["predictions"]]
    target = PREDICTION[name]
    for one, alone in zip(whole.json()["predictions"], together, strict=True):
        assert one[target] == pytest.approx(alone[target], rel=RTOL)
        for bound in ("lower", "upper"):  # None where the row lies outside the training range
            expected = alone["interval"][bound]
            assert one["interval"][bound] == (expected and pytest.approx(expected, rel=RTOL))
        assert one["outside_training_range"] == alone["outside_training_range"]


def test_a_large_json_batch_with_bad_rows_names_them_as_csv_does(customer: TestClient) -> None:
    rows = rows_of("customer_needs", LARGE)
    rows[0] = {**rows[0], "age": 300}
    rows[1500] = {**rows[1500], "gender": "robot"}
    rows[1999] = {**rows[1999], "income": -5}

    by_json = as_json(customer, rows)
    by_csv = as_csv(customer, "customer_needs", rows)

    assert by_json.status_code == by_csv.status_code == 422
    assert with_lines(by_json.json()) == by_csv.json()
    details = by_json.json()["error"]["details"]
    assert [(d["row"], d["field"]) for d in details] == [
        (0, "age"),
        (1500, "gender"),
        (1999, "income"),
    ]
    assert by_json.json()["error"]["message"] == f"3 of {LARGE} rows are invalid"
