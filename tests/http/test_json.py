"""POST JSON to a function's URL: instances as objects or lists, and the options they take."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.http.support import (
    FAR_OUT,
    MODELS,
    PREDICTION,
    ROWS,
    RTOL,
    TARGETS,
    bounds,
    outside,
    predicted,
    shapley,
    strict_reason,
    version,
)

# As a user sends them (numeric strings, aliases in any case); ROWS: as the model reads them.
SENT = {
    "customer_needs": [
        {"age": 35, "gender": "F", "income": "52000"},
        {"age": "61", "gender": "male", "income": 90000.5},
        {"age": 18, "gender": "Non-Binary", "income": 0},
    ],
    "market_trend": [
        {"sales": 9000, "population": 300.5, "gdp": 13000},
        {"sales": "4000.5", "population": "200", "gdp": 6000},
    ],
}


def post(client: TestClient, document: Any, path: str = "/") -> Any:
    response = client.post(path, json=document)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("name", MODELS)
def test_a_list_of_instances_gets_the_models_predictions_in_order(
    clients: dict[str, TestClient], name: str
) -> None:
    response = clients[name].post("/", json={"instances": SENT[name]})

    assert response.status_code == 200, response.text
    body = response.json()
    assert list(body) == ["predictions", "outside_training_range", "model"]
    assert body["predictions"] == pytest.approx(predicted(name, ROWS[name]), rel=RTOL)
    assert body["outside_training_range"] == [outside(name, row) for row in ROWS[name]]
    assert body["model"] == {"name": name, "version": version(name)}
    assert response.headers["X-Model-Name"] == name
    assert response.headers["X-Model-Version"] == version(name)


@pytest.mark.parametrize("name", MODELS)
def test_a_bare_object_is_one_instance(clients: dict[str, TestClient], name: str) -> None:
    body = post(clients[name], SENT[name][1])

    assert body["predictions"] == pytest.approx(predicted(name, ROWS[name][1:2]), rel=RTOL)


@pytest.mark.parametrize("name", MODELS)
def test_lists_in_feature_order_are_instances_too(
    clients: dict[str, TestClient], name: str
) -> None:
    features = list(ROWS[name][0])
    as_lists = [[row[f] for f in features] for row in SENT[name]]
    mixed = [as_lists[0], *SENT[name][1:]]

    by_list = post(clients[name], {"instances": as_lists})
    by_both = post(clients[name], {"instances": mixed})

    expected = predicted(name, ROWS[name])
    assert by_list["predictions"] == pytest.approx(expected, rel=RTOL)
    assert by_both["predictions"] == by_list["predictions"]


def test_the_function_answers_posts_under_its_own_name(customer: TestClient) -> None:
    body = post(customer, {"instances": SENT["customer_needs"]}, f"/{TARGETS['customer_needs']}")

    assert body["predictions"] == pytest.approx(
        predicted("customer_needs", ROWS["customer_needs"]), rel=RTOL
    )


@pytest.mark.parametrize("parameters", [None, {}])
def test_no_options_give_bare_numbers(customer: TestClient, parameters: object) -> None:
    body = post(customer, {"instances": SENT["customer_needs"], "parameters": parameters})

    assert all(type(value) is float for value in body["predictions"])


def test_no_instances_get_no_predictions(market: TestClient) -> None:
    body = post(market, {"instances": []})

    assert body["predictions"] == body["outside_training_range"] == []


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("level", [0.5, 0.9, 0.95])
def test_parameters_interval_adds_the_conformal_interval_at_that_level(
    clients: dict[str, TestClient], name: str, level: float
) -> None:
    target = PREDICTION[name]

    body = post(clients[name], {"instances": SENT[name], "parameters": {"interval": level}})

    expected = zip(predicted(name, ROWS[name]), bounds(name, ROWS[name], level), strict=True)
    for answer, row, (value, interval) in zip(
        body["predictions"], ROWS[name], expected, strict=True
    ):
        assert list(answer) == [target, "interval", "outside_training_range"]
        assert answer[target] == pytest.approx(value, rel=RTOL)
        assert answer["outside_training_range"] == outside(name, row)
        assert answer["interval"]["level"] == level
        if interval is None:
            assert answer["interval"] == {
                "level": level,
                "lower": None,
                "upper": None,
                "withheld": "outside the training range: not calibrated there",
            }
        else:
            lower, upper = interval
            assert answer["interval"]["lower"] == pytest.approx(lower, rel=RTOL)
            assert answer["interval"]["upper"] == pytest.approx(upper, rel=RTOL)


@pytest.mark.parametrize("name", MODELS)
def test_interval_widths_follow_each_rows_scale(clients: dict[str, TestClient], name: str) -> None:
    # Two rows inside the training range whose scales differ: their widths must differ too.
    rows = {
        "customer_needs": [
            {"age": 40, "gender": "female", "income": 20000},
            {"age": 40, "gender": "female", "income": 250000},
        ],
        "market_trend": [
            {"sales": 2000, "population": 200, "gdp": 3000},
            {"sales": 9000, "population": 300, "gdp": 13000},
        ],
    }[name]
    assert [outside(name, row) for row in rows] == [[], []]

    body = post(clients[name], {"instances": rows, "parameters": {"interval": 0.9}})

    widths = [a["interval"]["upper"] - a["interval"]["lower"] for a in body["predictions"]]
    expected = [b[1] - b[0] for b in bounds(name, rows, 0.9) if b is not None]
    assert widths == pytest.approx(expected, rel=1e-6)
    assert widths[1] > widths[0] * 1.5


@pytest.mark.parametrize("name", MODELS)
def test_parameters_explain_adds_each_features_exact_shapley_value(
    clients: dict[str, TestClient], name: str
) -> None:
    target = PREDICTION[name]

    body = post(clients[name], {"instances": SENT[name], "parameters": {"explain": True}})

    expected = predicted(name, ROWS[name])
    for answer, row, value in zip(body["predictions"], ROWS[name], expected, strict=True):
        base, contributions = shapley(name, row)
        scale = abs(value) * RTOL
        assert answer[target] == pytest.approx(value, rel=RTOL)
        assert answer["base_value"] == pytest.approx(base, rel=RTOL)
        assert answer["contributions"] == pytest.approx(contributions, rel=RTOL, abs=scale)
        assert answer["base_value"] + sum(answer["contributions"].values()) == pytest.approx(
            value, rel=RTOL
        )
        assert "interval" not in answer
        assert answer["outside_training_range"] == outside(name, row)


def test_interval_and_explain_together_give_both(customer: TestClient) -> None:
    parameters = {"interval": 0.8, "explain": True}

    body = post(customer, {"instances": SENT["customer_needs"], "parameters": parameters})

    for answer in body["predictions"]:
        assert list(answer) == [
            "purchase_amount",
            "interval",
            "outside_training_range",
            "base_value",
            "contributions",
        ]
        assert answer["interval"]["level"] == 0.8
        assert list(answer["contributions"]) == ["age", "gender", "income"]


# --- applicability: outside the training range -----------------------------------------------


def test_a_row_beyond_the_training_range_is_answered_and_flagged(customer: TestClient) -> None:
    flagged = outside("customer_needs", FAR_OUT)
    assert "income" in flagged  # 5,000,000 is far above any income the model was fit on
    rows = [ROWS["customer_needs"][0], FAR_OUT]

    bare = post(customer, {"instances": [SENT["customer_needs"][0], FAR_OUT]})
    objects = post(customer, {"instances": rows, "parameters": {"interval": 0.9}})

    assert bare["predictions"] == pytest.approx(predicted("customer_needs", rows), rel=RTOL)
    assert bare["outside_training_range"] == [[], flagged]
    assert [a["outside_training_range"] for a in objects["predictions"]] == [[], flagged]
    assert objects["predictions"][0]["interval"]["lower"] is not None
    assert objects["predictions"][1]["interval"] == {
        "level": 0.9,
        "lower": None,
        "upper": None,
        "withheld": "outside the training range: not calibrated there",
    }


def test_strict_accepts_rows_inside_the_training_range(customer: TestClient) -> None:
    rows = ROWS["customer_needs"][:2]
    assert [outside("customer_needs", row) for row in rows] == [[], []]

    body = post(customer, {"instances": rows, "parameters": {"strict": True}})

    assert body["predictions"] == pytest.approx(predicted("customer_needs", rows), rel=RTOL)
    assert body["outside_training_range"] == [[], []]


def test_strict_refuses_a_row_outside_naming_the_row_the_feature_and_the_range(
    customer: TestClient,
) -> None:
    rows = [ROWS["customer_needs"][0], FAR_OUT, ROWS["customer_needs"][1]]

    response = customer.post("/", json={"instances": rows, "parameters": {"strict": True}})

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert error["message"] == "1 of 3 rows are invalid"
    assert error["details"] == [
        {"row": 1, "field": feature, "reason": strict_reason("customer_needs", feature)}
        for feature in outside("customer_needs", FAR_OUT)
    ]


def test_strict_false_flags_the_row_instead(customer: TestClient) -> None:
    body = post(customer, {"instances": [FAR_OUT], "parameters": {"strict": False}})

    assert body["outside_training_range"] == [outside("customer_needs", FAR_OUT)]
