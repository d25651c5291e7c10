from __future__ import annotations

import re

import orjson
import pytest

from shared.schema import (
    CUSTOMER_NEEDS,
    MARKET_TREND,
    MODELS,
    CategoricalFeature,
    ModelSchema,
    NumericFeature,
)

GENDER = CUSTOMER_NEEDS.features[1]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_to_dict_from_dict_round_trip(name: str) -> None:
    schema = MODELS[name].schema

    rebuilt = ModelSchema.from_dict(schema.to_dict())

    assert rebuilt == schema


@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_through_json_text(name: str) -> None:
    # metadata.json is where the schema lives between training and serving.
    schema = MODELS[name].schema

    rebuilt = ModelSchema.from_dict(orjson.loads(orjson.dumps(schema.to_dict())))

    assert rebuilt == schema
    assert rebuilt.feature_names == schema.feature_names
    assert rebuilt.to_dict() == schema.to_dict()


def test_to_dict_shape() -> None:
    document = CUSTOMER_NEEDS.to_dict()

    assert [feature["name"] for feature in document["features"]] == ["age", "gender", "income"]
    assert document["features"][0] == {
        "name": "age",
        "type": "number",
        "minimum": 18,
        "maximum": 100,
        "description": "Customer age in years.",
    }
    assert document["features"][1]["type"] == "category"
    assert document["features"][1]["categories"] == ["female", "male", "other"]
    assert document["features"][1]["aliases"]["male"] == ["m", "man"]
    assert document["target"] == {
        "name": "purchase_amount",
        "description": CUSTOMER_NEEDS.target_description,
        "minimum": 0.0,
    }
    assert document["time"] == []


def test_an_amount_and_a_forecast_of_sales_are_never_negative() -> None:
    assert CUSTOMER_NEEDS.target_minimum == 0
    assert MARKET_TREND.target_minimum == 0


def test_the_market_rows_are_ordered_in_time_by_year_and_quarter_for_training_only() -> None:
    document = MARKET_TREND.to_dict()

    assert MARKET_TREND.time == ("year", "quarter")
    assert document["time"] == ["year", "quarter"]
    assert not set(MARKET_TREND.time) & set(MARKET_TREND.feature_names)  # not sent by requests
    assert not set(MARKET_TREND.time) & set(MARKET_TREND.json_schema()["properties"])


def test_a_schema_stored_before_target_minimum_and_time_reads_without_them() -> None:
    document = CUSTOMER_NEEDS.to_dict()
    document["target"] = {"name": "purchase_amount", "description": "old"}
    del document["time"]

    rebuilt = ModelSchema.from_dict(document)

    assert rebuilt.target_minimum is None
    assert rebuilt.time == ()
    assert rebuilt.features == CUSTOMER_NEEDS.features


def test_from_dict_rejects_an_unknown_feature_type() -> None:
    document = {
        "features": [{"name": "colour", "type": "colour"}],
        "target": {"name": "y"},
    }

    with pytest.raises(ValueError, match="unknown feature type 'colour' for 'colour'"):
        ModelSchema.from_dict(document)


def test_from_dict_defaults_optional_fields() -> None:
    document = {
        "features": [
            {"name": "x", "type": "number", "minimum": "0", "maximum": 1},
            {"name": "c", "type": "category", "categories": ["a", "b"]},
        ],
        "target": {"name": "y"},
    }

    schema = ModelSchema.from_dict(document)

    assert schema == ModelSchema(
        features=(NumericFeature("x", 0.0, 1.0), CategoricalFeature("c", ("a", "b"))),
        target="y",
    )


@pytest.mark.parametrize("schema", [CUSTOMER_NEEDS, MARKET_TREND], ids=["customer", "market"])
def test_json_schema_describes_one_instance(schema: ModelSchema) -> None:
    document = schema.json_schema()

    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["type"] == "object"
    assert document["additionalProperties"] is False
    assert document["required"] == list(schema.feature_names)
    assert list(document["properties"]) == list(schema.feature_names)


def test_json_schema_of_a_numeric_feature_admits_numbers_in_range_and_numeric_strings() -> None:
    age = CUSTOMER_NEEDS.json_schema()["properties"]["age"]

    number, string = age["oneOf"]

    assert number == {"type": "number", "minimum": 18, "maximum": 100}
    assert string["type"] == "string"
    assert age["description"] == "Customer age in years."


@pytest.mark.parametrize("text", ["42", " 42 ", "1e3", "-.5", "+4.2E-1", "42.", "\t7\n"])
def test_numeric_string_pattern_accepts_numbers(text: str) -> None:
    pattern = CUSTOMER_NEEDS.json_schema()["properties"]["age"]["oneOf"][1]["pattern"]

    assert re.search(pattern, text)


@pytest.mark.parametrize("text", ["", "abc", "nan", "inf", "1e", ".", "4 2", "0x10", "--1"])
def test_numeric_string_pattern_rejects_non_numbers(text: str) -> None:
    pattern = CUSTOMER_NEEDS.json_schema()["properties"]["age"]["oneOf"][1]["pattern"]

    assert not re.search(pattern, text)


def test_json_schema_of_a_category_lists_every_spelling() -> None:
    gender = CUSTOMER_NEEDS.json_schema()["properties"]["gender"]

    assert gender["type"] == "string"
    assert gender["description"] == "Customer gender. Case-insensitive; aliases accepted."
    assert gender["examples"] == sorted(gender["examples"])
    assert {"female", "male", "other", "f", "m", "man", "woman", "x"} <= set(gender["examples"])


def test_lookup_maps_categories_and_aliases_case_folded() -> None:
    assert isinstance(GENDER, CategoricalFeature)

    table = GENDER.lookup()

    assert table["female"] == "female"
    assert table["male"] == "male"
    assert table["other"] == "other"
    assert table["f"] == "female"
    assert table["w"] == "female"
    assert table["m"] == "male"
    assert table["man"] == "male"
    assert table["non-binary"] == "other"
    assert all(key == key.casefold() for key in table)
    assert set(table.values()) == {"female", "male", "other"}


def test_lookup_covers_every_alias_and_nothing_else() -> None:
    feature = CategoricalFeature(
        "size", categories=("Small", "Large"), aliases={"Large": ("L", "XL")}
    )

    table = feature.lookup()

    assert table == {"small": "Small", "large": "Large", "l": "Large", "xl": "Large"}


def test_the_list_of_models_names_both_models_and_their_functions() -> None:
    assert {name: model.schema for name, model in MODELS.items()} == {
        "customer_needs": CUSTOMER_NEEDS,
        "market_trend": MARKET_TREND,
    }
    assert {model.function for model in MODELS.values()} == {
        "predict_customer_needs",
        "predict_market_trend",
    }
    assert CUSTOMER_NEEDS.target == "purchase_amount"
    assert MARKET_TREND.feature_names == ("sales", "population", "gdp")
    assert MARKET_TREND.target == "future_sales"
