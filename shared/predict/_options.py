"""What a request may ask for beyond the bare prediction, and whether the model can give it.

Plain Python: small requests are answered without importing pandas or numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from shared.errors import InvalidInput, Problem
from shared.predict._applicability import trained_ranges
from shared.predict._intervals import LevelTooHigh, calibration, half_width

if TYPE_CHECKING:
    from shared.store import LoadedModel

NOT_AVAILABLE = "not available for this model"
NAMED: Mapping[str, str] = MappingProxyType({})  # every option under parameters.<option>
DEFAULT_LEVEL = 0.9
"""The level of an interval asked for without one: a BigQuery function's lower, upper or
interval output, an Open Inference bound output asked for by name."""


@dataclass(frozen=True)
class Options:
    """What a request asked for beyond the bare prediction."""

    interval: float | None = None
    explain: bool = False
    strict: bool = False  # rows outside the training range are faults, not flagged answers
    # By option, the request field that asked for it when the request did not set the option
    # itself (an output asked for by name): a fault in it is reported under that field.
    asked_by: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def extras(self) -> bool:
        return self.interval is not None or self.explain

    def source(self, option: str) -> str:
        """The request field that asked for `option`."""
        return self.asked_by.get(option, f"parameters.{option}")


def parse_options(parameters: Mapping[str, Any], asked_by: Mapping[str, str] = NAMED) -> Options:
    """`{"interval": 0.9, "explain": true, "strict": true}`; every fault reported at once, under
    the request field that set the option (`asked_by`; `parameters.<option>` by default)."""

    def where(option: str) -> str:
        return asked_by.get(option, f"parameters.{option}")

    problems = [
        Problem(None, where(key), "unknown parameter")
        for key in parameters
        if key not in {"interval", "explain", "strict"}
    ]
    interval = parameters.get("interval")
    if interval is not None and not _is_level(interval):
        problems.append(Problem(None, where("interval"), "must be a number between 0 and 1"))
    explain = parameters.get("explain", False)
    if not isinstance(explain, bool):
        problems.append(Problem(None, where("explain"), "must be true or false"))
    strict = parameters.get("strict", False)
    if not isinstance(strict, bool):
        problems.append(Problem(None, where("strict"), "must be true or false"))
    if problems:
        raise InvalidInput("invalid parameters", tuple(problems))
    level = float(interval) if interval is not None else None
    return Options(interval=level, explain=explain, strict=strict, asked_by=asked_by)


def options_from_query(query: Mapping[str, str]) -> dict[str, Any]:
    """CSV requests carry options in the query string: `?interval=0.9&explain=true`."""
    parameters: dict[str, Any] = {}
    for key, value in query.items():
        if key in ("explain", "strict"):
            lowered = value.strip().lower()
            parameters[key] = {"true": True, "1": True, "false": False, "0": False}.get(
                lowered, value
            )
        elif key == "interval":
            try:
                parameters[key] = float(value)
            except ValueError:
                parameters[key] = value
        else:
            parameters[key] = value
    return parameters


def interval_half_width(model: LoadedModel, options: Options) -> float:
    """The score quantile for the level asked for: each row's half-width is this times its
    scale. Refused under the field that asked for the interval."""
    assert options.interval is not None
    where = options.source("interval")
    calibrated = calibration(model)
    if calibrated is None:
        raise InvalidInput(NOT_AVAILABLE, (Problem(None, where, NOT_AVAILABLE),))
    try:
        return half_width(calibrated.scores, options.interval)
    except LevelTooHigh as exc:
        raise InvalidInput("interval level too high", (Problem(None, where, str(exc)),)) from exc


def check_available(model: LoadedModel, options: Options) -> None:
    problems = []
    if options.interval is not None and "intervals" not in model.metadata:
        problems.append(Problem(None, options.source("interval"), NOT_AVAILABLE))
    if options.explain and "explanations" not in model.metadata:
        problems.append(Problem(None, options.source("explain"), NOT_AVAILABLE))
    if options.strict and not trained_ranges(model):
        problems.append(Problem(None, options.source("strict"), NOT_AVAILABLE))
    if problems:
        raise InvalidInput("requested output is not available for this model", tuple(problems))


def _is_level(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < 1
