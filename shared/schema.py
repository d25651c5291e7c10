"""Feature schemas: what each model accepts, written into its metadata and read back to serve;
and `MODELS`, the one list of the models this bundle serves.

Training writes `ModelSchema.to_dict()` into metadata.json; serving rebuilds it with
`ModelSchema.from_dict()`, so a request is checked against exactly what the model was
trained on.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# The numeric strings accepted (shared/validation applies the same expression).
# Unambiguous (one way to match any text), so that a failing match never backtracks far.
NUMBER_PATTERN = (
    r"^[ \t\r\n\f\v]*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?[ \t\r\n\f\v]*$"
)


@dataclass(frozen=True)
class NumericFeature:
    name: str
    minimum: float
    maximum: float
    description: str = ""
    kind: str = field(default="number", init=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "description": self.description,
        }

    def json_schema(self) -> dict[str, Any]:
        # Numeric strings are accepted too, so the schema admits both forms.
        return {
            "description": self.description,
            "oneOf": [
                {"type": "number", "minimum": self.minimum, "maximum": self.maximum},
                {
                    "type": "string",
                    "pattern": NUMBER_PATTERN,
                },
            ],
        }


@dataclass(frozen=True)
class CategoricalFeature:
    name: str
    categories: tuple[str, ...]
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    description: str = ""
    kind: str = field(default="category", init=False)

    def lookup(self) -> Mapping[str, str]:
        """Every accepted spelling, case-folded, mapped to its canonical category."""
        return self._lookup

    @functools.cached_property
    def _lookup(self) -> Mapping[str, str]:  # made once: every request looks values up in it
        table = {category.casefold(): category for category in self.categories}
        for category, spellings in self.aliases.items():
            table.update({spelling.casefold(): category for spelling in spellings})
        return MappingProxyType(table)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.kind,
            "categories": list(self.categories),
            "aliases": {category: list(spellings) for category, spellings in self.aliases.items()},
            "description": self.description,
        }

    def json_schema(self) -> dict[str, Any]:
        spellings = sorted({*self.categories, *(s for a in self.aliases.values() for s in a)})
        return {
            "description": f"{self.description} Case-insensitive; aliases accepted.".strip(),
            "type": "string",
            "examples": spellings,
        }


Feature = NumericFeature | CategoricalFeature


@dataclass(frozen=True)
class ModelSchema:
    """The features a model takes and the target it predicts.

    `target_minimum`: the least value the target can take (0 for an amount); predictions and
    interval bounds never go below it. `time`: columns that order the training rows in time
    (training only: a request does not send them).
    """

    features: tuple[Feature, ...]
    target: str
    target_description: str = ""
    target_minimum: float | None = None
    time: tuple[str, ...] = ()

    @functools.cached_property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.features)

    @property
    def numeric_names(self) -> frozenset[str]:
        """The features read as numbers (a codec may type these columns as it reads them)."""
        return frozenset(f.name for f in self.features if isinstance(f, NumericFeature))

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [feature.to_dict() for feature in self.features],
            "target": {
                "name": self.target,
                "description": self.target_description,
                "minimum": self.target_minimum,
            },
            "time": list(self.time),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSchema:
        return cls(
            features=tuple(_feature_from_dict(item) for item in data["features"]),
            target=data["target"]["name"],
            target_description=data["target"].get("description", ""),
            target_minimum=data["target"].get("minimum"),
            time=tuple(data.get("time", ())),
        )

    def json_schema(self) -> dict[str, Any]:
        """A JSON Schema for one instance."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {feature.name: feature.json_schema() for feature in self.features},
            "required": list(self.feature_names),
            "additionalProperties": False,
        }


def _feature_from_dict(data: Mapping[str, Any]) -> Feature:
    if data["type"] == "number":
        return NumericFeature(
            name=data["name"],
            minimum=float(data["minimum"]),
            maximum=float(data["maximum"]),
            description=data.get("description", ""),
        )
    if data["type"] == "category":
        return CategoricalFeature(
            name=data["name"],
            categories=tuple(data["categories"]),
            aliases={key: tuple(value) for key, value in data.get("aliases", {}).items()},
            description=data.get("description", ""),
        )
    raise ValueError(f"unknown feature type {data['type']!r} for {data['name']!r}")


CUSTOMER_NEEDS = ModelSchema(
    features=(
        NumericFeature("age", 18, 100, "Customer age in years."),
        CategoricalFeature(
            "gender",
            categories=("female", "male", "other"),
            aliases={
                "female": ("f", "woman", "w"),
                "male": ("m", "man"),
                "other": ("o", "x", "non-binary", "nonbinary", "diverse"),
            },
            description="Customer gender.",
        ),
        NumericFeature("income", 0, 10_000_000, "Yearly income."),
    ),
    target="purchase_amount",
    target_description="Predicted yearly purchase amount, in the income's currency.",
    target_minimum=0.0,
)

MARKET_TREND = ModelSchema(
    features=(
        # Positive: the forecast grows from ratios of them (a market of 0 has no growth).
        NumericFeature(
            "sales", 0.001, 1e6, "This quarter's sales (real consumption, bn, SAAR); positive."
        ),
        NumericFeature("population", 0.001, 1e5, "Population, millions; positive."),
        NumericFeature("gdp", 0.001, 1e7, "This quarter's real GDP, bn, SAAR; positive."),
    ),
    target="future_sales",
    target_description="Predicted sales next quarter, in the units of sales.",
    target_minimum=0.0,
    time=("year", "quarter"),
)


@dataclass(frozen=True)
class ServedModel:
    """A model this bundle trains and serves: its schema before training (serving reads the
    trained version's own from its metadata) and the HTTP function that answers for it."""

    name: str
    schema: ModelSchema
    function: str


MODELS: Mapping[str, ServedModel] = {
    model.name: model
    for model in (
        ServedModel("customer_needs", CUSTOMER_NEEDS, "predict_customer_needs"),
        ServedModel("market_trend", MARKET_TREND, "predict_market_trend"),
    )
}
"""The one list of models: the CLI, upload routing, the entry points, the benchmark suite and
the docs take their names from it (deploy.sh and openapi.yaml spell them out; a test holds them
to this list)."""
