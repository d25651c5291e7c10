"""POST JSON to a function's URL: instances as objects or lists, and the options they take."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.http.support import (
    MODELS,
    PREDICTION,
    ROWS,
    RTOL,
    TARGETS,
    half_width,
    predicted,
    shapley,
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


def post(client: FlaskClient, document: Any, path: str = "/") -> Any:
    response = client.post(path, json=document)
    assert response.status_code == 200, response.text
    return response.get_json()


@pytest.mark.parametrize("name", MODELS)
def test_a_list_of_instances_gets_the_models_predictions_in_order(
    clients: dict[str, FlaskClient], name: str
) -> None:
    response = clients[name].post("/", json={"instances": SENT[name]})

    assert response.status_code == 200, response.text
    body = response.get_json()
    assert body["predictions"] == pytest.approx(predicted(name, ROWS[name]), rel=RTOL)
    assert body["model"] == {"name": name, "version": version(name)}
    assert response.headers["X-Model-Name"] == name
    assert response.headers["X-Model-Version"] == version(name)


@pytest.mark.parametrize("name", MODELS)
def test_a_bare_object_is_one_instance(clients: dict[str, FlaskClient], name: str) -> None:
    body = post(clients[name], SENT[name][1])

    assert body["predictions"] == pytest.approx(predicted(name, ROWS[name][1:2]), rel=RTOL)


@pytest.mark.parametrize("name", MODELS)
def test_lists_in_feature_order_are_instances_too(
    clients: dict[str, FlaskClient], name: str
) -> None:
    features = list(ROWS[name][0])
    as_lists = [[row[f] for f in features] for row in SENT[name]]
    mixed = [as_lists[0], *SENT[name][1:]]

    by_list = post(clients[name], {"instances": as_lists})
    by_both = post(clients[name], {"instances": mixed})

    expected = predicted(name, ROWS[name])
    assert by_list["predictions"] == pytest.approx(expected, rel=RTOL)
    assert by_both["predictions"] == by_list["predictions"]


def test_the_function_answers_posts_under_its_own_name(customer: FlaskClient) -> None:
    body = post(customer, {"instances": SENT["customer_needs"]}, f"/{TARGETS['customer_needs']}")

    assert body["predictions"] == pytest.approx(
        predicted("customer_needs", ROWS["customer_needs"]), rel=RTOL
    )


@pytest.mark.parametrize("parameters", [None, {}])
def test_no_options_give_bare_numbers(customer: FlaskClient, parameters: object) -> None:
    body = post(customer, {"instances": SENT["customer_needs"], "parameters": parameters})

    assert all(type(value) is float for value in body["predictions"])


def test_no_instances_get_no_predictions(market: FlaskClient) -> None:
    body = post(market, {"instances": []})

    assert body["predictions"] == []


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("level", [0.5, 0.9, 0.95])
def test_parameters_interval_adds_the_conformal_interval_at_that_level(
    clients: dict[str, FlaskClient], name: str, level: float
) -> None:
    target = PREDICTION[name]

    body = post(clients[name], {"instances": SENT[name], "parameters": {"interval": level}})

    width = half_width(name, level)
    expected = predicted(name, ROWS[name])
    for answer, value in zip(body["predictions"], expected, strict=True):
        assert answer[target] == pytest.approx(value, rel=RTOL)
        assert answer["interval"]["level"] == level
        assert answer["interval"]["lower"] == pytest.approx(value - width, rel=RTOL)
        assert answer["interval"]["upper"] == pytest.approx(value + width, rel=RTOL)
        assert set(answer) == {target, "interval"}


@pytest.mark.parametrize("name", MODELS)
def test_parameters_explain_adds_each_features_exact_shapley_value(
    clients: dict[str, FlaskClient], name: str
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


def test_interval_and_explain_together_give_both(customer: FlaskClient) -> None:
    parameters = {"interval": 0.8, "explain": True}

    body = post(customer, {"instances": SENT["customer_needs"], "parameters": parameters})

    for answer in body["predictions"]:
        assert set(answer) == {"purchase_amount", "interval", "base_value", "contributions"}
        assert answer["interval"]["level"] == 0.8
        assert list(answer["contributions"]) == ["age", "gender", "income"]
