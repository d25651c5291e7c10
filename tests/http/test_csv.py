"""POST CSV to a function's URL: the rows come back as sent, with the prediction appended."""

from __future__ import annotations

import csv
import io

import pytest
from starlette.testclient import TestClient

from shared.codecs._csv import GRID_MIN_BYTES
from tests.http.support import (
    FAR_OUT,
    MODELS,
    PREDICTION,
    RTOL,
    TARGETS,
    bounds,
    csv_body,
    csv_rows,
    features,
    outside,
    predicted,
    shapley,
    strict_reason,
    version,
)

CUSTOMERS = [
    {"age": 35, "gender": "female", "income": 52000},
    {"age": 61.5, "gender": "male", "income": 90000.5},
    {"age": 18, "gender": "other", "income": 0},
]
MARKETS = [
    {"sales": 9000, "population": 300.5, "gdp": 13000},
    {"sales": 4000.5, "population": 200, "gdp": 6000},
]
ROWS = {"customer_needs": CUSTOMERS, "market_trend": MARKETS}


def post_csv(client: TestClient, body: bytes, path: str = "/") -> bytes:
    response = client.post(path, content=body, headers={"Content-Type": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return response.content


def test_extra_columns_and_every_cell_come_back_exactly_as_sent(customer: TestClient) -> None:
    body = (
        "customer_id,income,note,gender,age,empty\r\n"
        'A-007,52000.0,"hello, ""world""\nline two",F,35,\r\n'
        "B-2,9.00005e4,=1+1,  male ,61.5,\r\n"
        'C-3,0,"é, ü",Other,18,\r\n'
    ).encode()

    answer = post_csv(customer, body)

    lines = answer.decode().split("\r\n")
    assert lines[0] == (
        "customer_id,income,note,gender,age,empty,purchase_amount,outside_training_range"
    )
    rows = csv_rows(answer)
    assert [row["customer_id"] for row in rows] == ["A-007", "B-2", "C-3"]
    assert [row["income"] for row in rows] == ["52000.0", "9.00005e4", "0"]
    assert [row["note"] for row in rows] == ['hello, "world"\nline two', "=1+1", "é, ü"]
    assert [row["gender"] for row in rows] == ["F", "  male ", "Other"]
    assert [row["empty"] for row in rows] == ["", "", ""]
    values = [float(row["purchase_amount"]) for row in rows]
    assert values == pytest.approx(predicted("customer_needs", CUSTOMERS), rel=RTOL)
    assert [row["outside_training_range"] for row in rows] == [
        ";".join(outside("customer_needs", row)) for row in CUSTOMERS
    ]


def test_plain_rows_are_returned_byte_for_byte_with_the_prediction_appended(
    market: TestClient,
) -> None:
    sent = ["id,gdp,sales,population", "q1,13000,9000,300.5", "q2,6000.000,4000.5,2e2"]

    answer = post_csv(market, "\n".join(sent).encode() + b"\n")

    lines = answer.decode().split("\r\n")
    assert lines[-1] == ""
    assert lines[0] == sent[0] + ",future_sales,outside_training_range"
    cells = [line.rsplit(",", 2) for line in lines[1:-1]]
    assert [sent_part for sent_part, _, _ in cells] == sent[1:]
    values = [float(value) for _, value, _ in cells]
    assert values == pytest.approx(predicted("market_trend", MARKETS), rel=RTOL)
    assert [flag for _, _, flag in cells] == [
        ";".join(outside("market_trend", row)) for row in MARKETS
    ]


@pytest.mark.parametrize("name", MODELS)
def test_csv_answers_are_the_models_predictions_and_name_the_version(
    clients: dict[str, TestClient], name: str
) -> None:
    header = list(ROWS[name][0])

    response = clients[name].post(
        "/",
        content=csv_body(header, [list(r.values()) for r in ROWS[name]]),
        headers={"Content-Type": "text/csv"},
    )

    assert response.status_code == 200, response.text
    assert response.headers["X-Model-Version"] == version(name)
    values = [float(row[PREDICTION[name]]) for row in csv_rows(response.content)]
    assert values == pytest.approx(predicted(name, ROWS[name]), rel=RTOL)


@pytest.mark.parametrize("name", MODELS)
def test_query_interval_appends_the_bounds_at_that_level(
    clients: dict[str, TestClient], name: str
) -> None:
    body = csv_body(list(ROWS[name][0]), [list(r.values()) for r in ROWS[name]])
    target = PREDICTION[name]

    answer = post_csv(clients[name], body, "/?interval=0.8")

    rows = csv_rows(answer)
    assert list(rows[0])[-4:] == [
        target,
        f"{target}_lower",
        f"{target}_upper",
        "outside_training_range",
    ]
    expected = zip(predicted(name, ROWS[name]), bounds(name, ROWS[name], 0.8), strict=True)
    for row, (value, interval) in zip(rows, expected, strict=True):
        assert float(row[target]) == pytest.approx(value, rel=RTOL)
        if interval is None:  # withheld outside the training range
            assert row[f"{target}_lower"] == row[f"{target}_upper"] == ""
            assert row["outside_training_range"] != ""
        else:
            assert float(row[f"{target}_lower"]) == pytest.approx(interval[0], rel=RTOL)
            assert float(row[f"{target}_upper"]) == pytest.approx(interval[1], rel=RTOL)
            assert row["outside_training_range"] == ""


def test_query_explain_appends_the_base_value_and_each_contribution(
    customer: TestClient,
) -> None:
    body = csv_body(
        ["id", "age", "gender", "income"], [[i, *r.values()] for i, r in enumerate(CUSTOMERS)]
    )

    answer = post_csv(customer, body, "/?explain=true")

    rows = csv_rows(answer)
    assert list(rows[0]) == [
        "id",
        "age",
        "gender",
        "income",
        "purchase_amount",
        "outside_training_range",
        "base_value",
        "contribution_age",
        "contribution_gender",
        "contribution_income",
    ]
    for row, canonical in zip(rows, CUSTOMERS, strict=True):
        base, contributions = shapley("customer_needs", canonical)
        value = float(row["purchase_amount"])
        assert float(row["base_value"]) == pytest.approx(base, rel=RTOL)
        for feature, contribution in contributions.items():
            assert float(row[f"contribution_{feature}"]) == pytest.approx(
                contribution, rel=RTOL, abs=abs(value) * RTOL
            )


def test_a_header_alone_gets_the_header_back_with_the_target(customer: TestClient) -> None:
    answer = post_csv(customer, b"income,age,gender\r\n")

    assert answer == b"income,age,gender,purchase_amount,outside_training_range\r\n"


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(customer: TestClient) -> None:
    answer = post_csv(customer, "\ufeffage,gender,income\n35,f,52000\n".encode())

    assert answer.startswith(b"age,gender,income,purchase_amount,outside_training_range\r\n")


def test_csv_is_answered_under_the_function_name_too(market: TestClient) -> None:
    body = csv_body(list(MARKETS[0]), [list(MARKETS[0].values())])

    answer = post_csv(market, body, f"/{TARGETS['market_trend']}")

    assert float(csv_rows(answer)[0]["future_sales"]) == pytest.approx(
        predicted("market_trend", MARKETS[:1])[0], rel=RTOL
    )


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("rows", [1, 100], ids=["one row", "a batch"])
def test_every_appended_cell_is_the_very_float_json_answers(
    clients: dict[str, TestClient], name: str, rows: int
) -> None:
    sent = (ROWS[name] * rows)[:rows]
    target = PREDICTION[name]
    body = csv_body(list(sent[0]), [list(r.values()) for r in sent])

    by_csv = csv_rows(post_csv(clients[name], body, "/?interval=0.9&explain=true"))
    by_json = clients[name].post(
        "/", json={"instances": sent, "parameters": {"interval": 0.9, "explain": True}}
    )

    assert list(by_csv[0]) == [
        *sent[0],
        target,
        f"{target}_lower",
        f"{target}_upper",
        "outside_training_range",
        "base_value",
        *(f"contribution_{feature}" for feature in features(name)),
    ]
    for cells, answer in zip(by_csv, by_json.json()["predictions"], strict=True):
        assert float(cells[target]) == answer[target]
        for bound in ("lower", "upper"):
            cell, value = cells[f"{target}_{bound}"], answer["interval"][bound]
            assert (None if cell == "" else float(cell)) == value
        assert cells["outside_training_range"] == ";".join(answer["outside_training_range"])
        assert float(cells["base_value"]) == answer["base_value"]
        for feature, contribution in answer["contributions"].items():
            assert float(cells[f"contribution_{feature}"]) == contribution


# --- applicability: outside the training range -----------------------------------------------


def test_a_row_beyond_the_training_range_gets_its_features_named_in_one_cell(
    customer: TestClient,
) -> None:
    rows = [CUSTOMERS[0], FAR_OUT]
    flagged = outside("customer_needs", FAR_OUT)
    assert len(flagged) > 1  # age and income: the cell joins them with ";"
    body = csv_body(["id", *FAR_OUT], [[i, *r.values()] for i, r in enumerate(rows)])

    answer = csv_rows(post_csv(customer, body, "/?interval=0.9"))

    assert [row["outside_training_range"] for row in answer] == ["", ";".join(flagged)]
    assert [float(row["purchase_amount"]) for row in answer] == pytest.approx(
        predicted("customer_needs", rows), rel=RTOL
    )
    assert answer[0]["purchase_amount_lower"] != ""
    assert answer[1]["purchase_amount_lower"] == answer[1]["purchase_amount_upper"] == ""


@pytest.mark.parametrize("query", ["?strict=true", "?strict=1", "?strict=TRUE"])
def test_query_strict_answers_rows_inside_the_training_range(
    customer: TestClient, query: str
) -> None:
    rows = CUSTOMERS[:2]
    assert [outside("customer_needs", row) for row in rows] == [[], []]
    body = csv_body(list(rows[0]), [list(r.values()) for r in rows])

    answer = csv_rows(post_csv(customer, body, f"/{query}"))

    assert [float(row["purchase_amount"]) for row in answer] == pytest.approx(
        predicted("customer_needs", rows), rel=RTOL
    )


def test_query_strict_refuses_a_row_outside_naming_the_feature_and_the_trained_range(
    customer: TestClient,
) -> None:
    rows = [CUSTOMERS[0], FAR_OUT]
    body = csv_body(list(FAR_OUT), [list(r.values()) for r in rows])

    response = customer.post("/?strict=true", content=body, headers={"Content-Type": "text/csv"})

    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"] == [
        {"row": 1, "field": feature, "reason": strict_reason("customer_needs", feature), "line": 3}
        for feature in outside("customer_needs", FAR_OUT)
    ]


# --- layouts: separators and decimal marks ---------------------------------------------------


def test_a_large_semicolon_body_gets_what_the_same_rows_get_with_commas(
    customer: TestClient,
) -> None:
    # Past GRID_MIN_BYTES: the comma body is read as a grid, the semicolon one by the reader.
    rows = [[f"{18 + i % 70},{i % 10}", "FMO"[i % 3], f"{1000 * i},5"] for i in range(4000)]
    semicolons = "\r\n".join(";".join(row) for row in [["age", "gender", "income"], *rows])
    commas = csv_body(["age", "gender", "income"], [[c.replace(",", ".") for c in r] for r in rows])
    assert len(commas) > GRID_MIN_BYTES

    by_semicolons = post_csv(customer, ("\ufeff" + semicolons).encode())
    by_commas = csv_rows(post_csv(customer, commas))

    answer = list(csv.reader(io.StringIO(by_semicolons.decode(), newline=""), delimiter=";"))
    assert answer[0] == ["age", "gender", "income", "purchase_amount", "outside_training_range"]
    assert [row[:3] for row in answer[1:]] == rows
    assert [float(row[3].replace(",", ".")) for row in answer[1:]] == [
        float(row["purchase_amount"]) for row in by_commas
    ]
    assert [row[4] for row in answer[1:]] == [row["outside_training_range"] for row in by_commas]


@pytest.mark.parametrize(
    "body",
    [b'age,gender,income\n35,F,"52000,5"\n', b"age\tgender\tincome\n35\tF\t52000,5\n"],
    ids=["commas", "tabs"],
)
def test_only_a_semicolon_file_reads_a_decimal_comma(customer: TestClient, body: bytes) -> None:
    refused = customer.post("/", content=body, headers={"Content-Type": "text/csv"})
    read = post_csv(customer, b"age;gender;income\n35;F;52000,5\n")

    assert refused.status_code == 422, refused.text
    details = refused.json()["error"]["details"]
    assert [(d["row"], d["field"], d["line"]) for d in details] == [(0, "income", 2)]
    assert details[0]["reason"].startswith("must be a plain number such as 1234.5")
    header, row, end = read.split(b"\r\n")
    assert (header, end) == (b"age;gender;income;purchase_amount;outside_training_range", b"")
    value = float(row.split(b";")[3].replace(b",", b"."))
    customer_row = {"age": 35, "gender": "female", "income": 52000.5}
    assert value == pytest.approx(predicted("customer_needs", [customer_row])[0], rel=RTOL)
