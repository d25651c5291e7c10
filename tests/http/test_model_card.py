"""GET on a function's URL: the model card, at the root and under /<function name>."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from tests.http.support import MODELS, TARGETS, bundled, predicted, version


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("prefix", ["", "/{function}", "/{function}/"])
def test_get_answers_the_model_card_at_the_root_and_under_the_function_name(
    clients: dict[str, FlaskClient], name: str, prefix: str
) -> None:
    path = prefix.format(function=TARGETS[name]) or "/"
    schema = bundled(name).schema

    response = clients[name].get(path)

    assert response.status_code == 200, response.text
    assert response.mimetype == "application/json"
    card = response.get_json()
    assert (card["name"], card["function"], card["version"]) == (name, TARGETS[name], version(name))
    assert card["sha256"] == bundled(name).sha256
    assert [f["name"] for f in card["features"]] == list(schema.feature_names)
    assert card["target"]["name"] == schema.target
    assert card["instance_schema"]["required"] == list(schema.feature_names)
    assert card["options"] == {"interval": True, "explain": True}
    assert response.headers["X-Model-Name"] == name
    assert response.headers["X-Model-Version"] == version(name)


def test_the_card_lists_categories_with_their_aliases(customer: FlaskClient) -> None:
    card = customer.get("/").get_json()

    gender = next(f for f in card["features"] if f["name"] == "gender")

    assert gender["categories"] == ["female", "male", "other"]
    assert {"m", "man"} <= set(gender["aliases"]["male"])


@pytest.mark.parametrize("name", MODELS)
def test_the_cards_example_request_is_answered_with_the_models_prediction(
    clients: dict[str, FlaskClient], name: str
) -> None:
    example = clients[name].get("/").get_json()["example_request"]

    response = clients[name].post("/", json=example)

    assert response.status_code == 200, response.text
    assert response.get_json()["predictions"] == pytest.approx(
        predicted(name, example["instances"]), rel=1e-9
    )


def test_head_answers_the_cards_headers_without_a_body(market: FlaskClient) -> None:
    response = market.head("/")

    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["X-Model-Version"] == version("market_trend")
