"""GET on a function's URL: the model card, at the root and under /<function name>."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.http.support import MODELS, TARGETS, bundled, predicted, version


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("prefix", ["", "/{function}", "/{function}/"])
def test_get_answers_the_model_card_at_the_root_and_under_the_function_name(
    clients: dict[str, TestClient], name: str, prefix: str
) -> None:
    path = prefix.format(function=TARGETS[name]) or "/"
    schema = bundled(name).schema

    response = clients[name].get(path)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].partition(";")[0] == "application/json"
    card = response.json()
    assert (card["name"], card["function"], card["version"]) == (name, TARGETS[name], version(name))
    assert card["sha256"] == bundled(name).sha256
    assert [f["name"] for f in card["features"]] == list(schema.feature_names)
    assert card["target"]["name"] == schema.target
    assert card["instance_schema"]["required"] == list(schema.feature_names)
    assert card["options"]["interval"] is card["options"]["explain"] is True
    assert set(card["options"]) == {"interval", "explain", "strict"}
    assert card["options"]["strict"] is bool(bundled(name).metadata["training"]["ranges"])
    assert response.headers["X-Model-Name"] == name
    assert response.headers["X-Model-Version"] == version(name)


@pytest.mark.parametrize("name", MODELS)
def test_the_card_says_what_the_model_is_for_and_where_it_was_trained(
    clients: dict[str, TestClient], name: str
) -> None:
    metadata = bundled(name).metadata

    card = clients[name].get("/").json()

    assert set(card["use"]) == {"intended", "out_of_scope", "data"}
    assert card["use"] == metadata["use"]
    assert all(isinstance(text, str) and text for text in card["use"].values())
    assert card["training_ranges"] == metadata["training"]["ranges"]
    assert list(card["training_ranges"]) == list(bundled(name).schema.feature_names)
    assert card["fairness"] == metadata["fairness"]
    assert card["target"]["minimum"] == metadata["schema"]["target"]["minimum"] == 0


@pytest.mark.parametrize("name", MODELS)
def test_the_card_describes_intervals_without_their_calibration_scores(
    clients: dict[str, TestClient], name: str
) -> None:
    intervals = bundled(name).metadata["intervals"]

    card = clients[name].get("/").json()

    assert set(card["intervals"]) == {
        "method",
        "width_follows",
        "calibration_rows",
        "outside_training_range",
    }
    assert card["intervals"]["method"] == intervals["method"]
    assert card["intervals"]["calibration_rows"] == len(intervals["scores"])
    # the market's width follows its sales (relative); the customer's a model of residuals
    assert intervals["scale"].get("feature", "model") in card["intervals"]["width_follows"]
    assert "withheld" in card["intervals"]["outside_training_range"]


def test_the_card_lists_categories_with_their_aliases(customer: TestClient) -> None:
    card = customer.get("/").json()

    gender = next(f for f in card["features"] if f["name"] == "gender")

    assert gender["categories"] == ["female", "male", "other"]
    assert {"m", "man"} <= set(gender["aliases"]["male"])


@pytest.mark.parametrize("name", MODELS)
def test_the_cards_example_request_is_answered_with_the_models_prediction(
    clients: dict[str, TestClient], name: str
) -> None:
    example = clients[name].get("/").json()["example_request"]

    response = clients[name].post("/", json=example)

    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == pytest.approx(
        predicted(name, example["instances"]), rel=1e-9
    )


def test_head_answers_the_cards_headers_without_a_body(market: TestClient) -> None:
    response = market.head("/")

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["X-Model-Version"] == version("market_trend")
