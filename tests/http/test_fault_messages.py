"""What a fault says beyond its reason, in every protocol: the value received (shortened), what
would work for a number written as a spreadsheet writes it, and the field a misspelt name was
probably meant to be."""

from __future__ import annotations

from typing import Any

import httpx2 as httpx
import orjson
import pytest
from starlette.testclient import TestClient

from tests.http.support import csv_body

PLAIN = (
    "must be a plain number such as 1234.5: currency signs and thousands separators are not read"
)
FORMATTED = ["$52,000", "52,000", "52000 EUR", "€ 52.000,50", "1 234 567"]
ROW = {"age": 35, "gender": "female", "income": 52000}


def details(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    return list(error["details"])


def one_line(response: httpx.Response, status: int = 422) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    return str(body["errorMessage"] if "errorMessage" in body else body["error"])


def tensors(row: dict[str, Any], names: dict[str, str] | None = None) -> dict[str, Any]:
    """One V2 tensor per field of `row`, named as `names` says (default: the field's name)."""
    return {
        "inputs": [
            {
                "name": (names or {}).get(name, name),
                "shape": [1],
                "datatype": "BYTES" if name == "gender" else "FP64",
                "data": [value],
            }
            for name, value in row.items()
        ]
    }


# --- the value received, and what would work ----------------------------------------------


@pytest.mark.parametrize("income", FORMATTED)
def test_a_number_written_with_currency_or_separators_says_so_and_what_was_received(
    customer: TestClient, income: str
) -> None:
    response = customer.post("/", json={**ROW, "income": income})

    assert details(response) == [{"row": 0, "field": "income", "reason": PLAIN, "received": income}]


@pytest.mark.parametrize("income", FORMATTED)
def test_a_spreadsheets_csv_gets_the_same_fault(customer: TestClient, income: str) -> None:
    # As a spreadsheet saves it: a BOM, CRLF line ends, the cell with a comma quoted.
    body = b"\xef\xbb\xbf" + csv_body(["id", "age", "gender", "income"], [["A-1", 35, "F", income]])

    response = customer.post("/", content=body, headers={"Content-Type": "text/csv"})

    fault = {"row": 0, "field": "income", "reason": PLAIN, "received": income, "line": 2}
    assert details(response) == [fault]


@pytest.mark.parametrize(
    ("field", "value", "reason", "received"),
    [
        ("income", "n/a", "must be a number", "n/a"),
        ("income", True, "must be a number", True),
        ("age", "300", "must be between 18 and 100", 300),
        ("age", 30.5e1, "must be between 18 and 100", 305),
        ("gender", "robot", "must be one of female, male, other", "robot"),
        ("gender", 5, "must be one of female, male, other", 5),
        ("income", "1e999", "must be a finite number", "1e999"),
    ],
)
def test_every_value_fault_shows_what_was_received(
    customer: TestClient, field: str, value: object, reason: str, received: object
) -> None:
    response = customer.post("/", json={"instances": [ROW, {**ROW, field: value}]})

    assert details(response) == [{"row": 1, "field": field, "reason": reason, "received": received}]


@pytest.mark.parametrize("value", [None, "", " ", {"a": 1}, [1, 2]])
def test_a_missing_value_or_an_object_shows_nothing_received(
    customer: TestClient, value: object
) -> None:
    response = customer.post("/", json={**ROW, "income": value})

    [detail] = details(response)
    assert "received" not in detail


def test_a_long_value_is_never_shown_whole(customer: TestClient) -> None:
    token = "sk_live_" + "7" * 40

    response = customer.post("/", json={**ROW, "gender": token})

    assert details(response)[0]["received"] == "sk_live_77..."
    assert token not in response.text
    assert token[:11] not in response.text


def test_the_one_line_protocols_write_the_value_after_the_reason(customer: TestClient) -> None:
    bad = {"age": 300, "gender": "F", "income": "$52,000"}
    expected = (
        "1 of 1 rows are invalid: row 0, age: must be between 18 and 100 (received 300); "
        f'row 0, income: {PLAIN} (received "$52,000")'
    )
    values = list(bad.values())

    answers = {
        "v1": customer.post("/v1/models/customer_needs:predict", json={"instances": [values]}),
        "v2": customer.post("/v2/models/customer_needs/infer", json=tensors(bad)),
        "bigquery": customer.post("/bigquery", json={"calls": [values]}),
    }

    assert one_line(answers["v1"]) == one_line(answers["v2"]) == expected
    assert one_line(answers["bigquery"], 400) == expected


def test_values_received_stay_out_of_the_log(
    customer: TestClient, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()

    response = customer.post("/", json={**ROW, "gender": "zq-31337", "income": "$31,337"})

    assert {d["received"] for d in details(response)} == {"zq-31337", "$31,337"}
    logged = capsys.readouterr().out
    assert [orjson.loads(line)["error"] for line in logged.splitlines()] == ["invalid_input"]
    assert "31337" not in logged
    assert "31,337" not in logged


# --- the field a name was probably meant to be ---------------------------------------------


@pytest.mark.parametrize(
    ("sent", "reason"),
    [
        ("incme", "unknown field (did you mean income?)"),
        ("Income", "unknown field (did you mean income?)"),
        (" INCOME ", "unknown field (did you mean income?)"),
        ("email", "unknown field"),  # close to no field: no guess
    ],
)
def test_an_unknown_field_suggests_the_field_it_probably_meant(
    customer: TestClient, sent: str, reason: str
) -> None:
    row = {"age": 35, "gender": "f", sent: 52000}

    response = customer.post("/", json={"instances": [row]})

    assert details(response) == [
        {"row": None, "field": "income", "reason": "missing column"},
        {"row": 0, "field": sent, "reason": reason},
    ]


def test_kserve_v1_names_the_field_a_misspelt_key_meant(market: TestClient) -> None:
    row = {"sales": 9000, "Population": 300, "gdp": 13000}

    response = market.post("/v1/models/market_trend:predict", json={"instances": [row]})

    assert one_line(response) == (
        "1 of 1 rows are invalid: population: missing column; "
        "row 0, Population: unknown field (did you mean population?)"
    )


def test_an_open_inference_input_named_almost_as_a_feature_gets_a_suggestion(
    customer: TestClient,
) -> None:
    body = tensors(ROW, {"gender": "Gender", "income": "incme"})

    response = customer.post("/v2/models/customer_needs/infer", json=body)

    assert one_line(response) == (
        "inputs do not match the model: Gender: unknown input (did you mean gender?); "
        "incme: unknown input (did you mean income?); gender: missing input; "
        "income: missing input"
    )


@pytest.mark.parametrize("rows", [1, 100, 5000], ids=["by row", "by column", "a grid"])
def test_a_csv_column_misspelt_in_the_header_is_named_in_its_missing_column(
    customer: TestClient, rows: int
) -> None:
    body = csv_body(["id", "age", "gender", "incme"], [["A-1", 35, "F", 52000]] * rows)

    response = customer.post("/", content=body, headers={"Content-Type": "text/csv"})

    assert details(response) == [
        {
            "row": None,
            "field": "income",
            "reason": 'missing column (is "incme" meant to be income?)',
        }
    ]
