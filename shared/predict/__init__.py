"""Predictions from a loaded model, whatever protocol the rows came in.

    predict(model, rows, options)  the one entry: checks the rows, chooses how to compute
                                   them (_paths), adds intervals and contributions
    Prediction                     what every protocol lays out (_result)
    Options, parse_options         what a request may ask for beyond the value (_options)
    output_columns                 the output columns, by name (_result); an output asked for
                                   by name implies its option (options_for_outputs)

Behind it: `_compiled` (the serving form in plain Python and numpy), `_tree_table` (boosted
trees as one lookup table), `_intervals` (split-conformal half-widths), `_explain` (exact
Shapley values). Importing this package loads neither numpy nor pandas: small requests never
need them.
"""

from __future__ import annotations

from shared.predict._applicability import OUTSIDE
from shared.predict._intervals import LevelTooHigh, calibration_scores, half_width
from shared.predict._options import (
    DEFAULT_LEVEL,
    NOT_AVAILABLE,
    Options,
    options_from_query,
    parse_options,
)
from shared.predict._paths import SMALL_ROWS, in_domain, predict
from shared.predict._result import (
    BASE_VALUE,
    Explanation,
    Interval,
    Prediction,
    as_list,
    invalid_rows,
    lower_name,
    options_for_outputs,
    output_columns,
    upper_name,
)

__all__ = [
    "BASE_VALUE",
    "DEFAULT_LEVEL",
    "NOT_AVAILABLE",
    "OUTSIDE",
    "SMALL_ROWS",
    "Explanation",
    "Interval",
    "LevelTooHigh",
    "Options",
    "Prediction",
    "as_list",
    "calibration_scores",
    "half_width",
    "in_domain",
    "invalid_rows",
    "lower_name",
    "options_for_outputs",
    "options_from_query",
    "output_columns",
    "parse_options",
    "predict",
    "upper_name",
]
