"""`predict`: the one place that chooses how rows are checked and how they are computed.

    path      when                                  checked by            computed by
    records   serving form, up to SMALL_ROWS rows   the row validator     plain Python
    columns   serving form, larger batches          the clean check,      numpy, or the
                                                    then a reference      trees' lookup table
                                                    validator for the
                                                    rows it cannot pass
    frame     no usable serving form                the frame validator   the pipeline

Whatever the path, a row gets the same answer and the same faults (property tests hold them
together). Every answer says which of its features lie outside the training range
(_applicability); with `strict` those rows are faults instead. Values and interval bounds never
go below the target's minimum (a documented clip: an amount is never negative). Intervals come
from the calibration scores in the metadata, scaled per row (_intervals) and withheld outside
the training range; contributions, when asked for, from the pipeline (exact Shapley values).
Nothing here knows a wire format.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import Problem
from shared.predict._applicability import (
    Outside,
    outside_columns,
    outside_records,
    strict_problems,
    trained_ranges,
)
from shared.predict._compiled import CompiledModel, serving_form
from shared.predict._intervals import Calibration, calibration
from shared.predict._options import Options, check_available, interval_half_width
from shared.predict._result import Explanation, Interval, Positions, Prediction
from shared.schema import CategoricalFeature, ModelSchema
from shared.validation import Rows, clean_columns, clean_records, validate, validate_records

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from shared.store import LoadedModel
    from shared.validation._reference import Validated

SMALL_ROWS = 64  # up to this many rows, plain Python beats building columns for numpy


def predict(
    model: LoadedModel, rows: Rows, options: Options, *, all_or_nothing: bool = True
) -> Prediction:
    """Predictions for the valid rows, with what `options` ask for, and every row's faults.

    `all_or_nothing`: one fault anywhere means no predictions at all (a request); otherwise
    the valid rows are predicted and the others are only named (a file). Raises InvalidInput
    when an option cannot be given by this model.
    """
    form = serving_form(model)
    if form is not None and rows.count <= SMALL_ROWS:
        checked = _by_record(rows, model)
    elif form is not None:
        checked = _by_column(rows, model)
    else:
        checked = _by_frame(rows, model)
    if checked.problems and all_or_nothing:
        return Prediction(model.schema, [], [], checked.problems, options=options)
    outside = _outside(model, checked)
    if options.strict:
        checked, outside = _strict(model, checked, outside)
        if checked.problems and all_or_nothing:
            return Prediction(model.schema, [], [], checked.problems, options=options)
    if all_or_nothing or len(checked.positions):
        check_available(model, options)
    values = in_domain(_values(model, form, checked), model.schema.target_minimum)
    return Prediction(
        model.schema,
        checked.positions,
        values,
        checked.problems,
        interval=_interval(model, values, checked, outside, options),
        explanation=_explanation(model, checked) if options.explain else None,
        options=options,
        outside=outside,
    )


@dataclass(frozen=True)
class _Checked:
    """The valid rows, canonical, as records or as columns; and every fault."""

    positions: Positions
    problems: tuple[Problem, ...]
    records: list[dict[str, Any]] | None = None
    columns: Mapping[str, Any] | None = None
    features: pd.DataFrame | None = None  # as the frame validator gave them

    @property
    def count(self) -> int:
        return len(self.positions)

    def as_columns(self) -> Mapping[str, Any]:
        if self.columns is not None:
            return self.columns
        if self.features is not None:
            return {str(name): self.features[name].to_numpy() for name in self.features.columns}
        raise ValueError("records, not columns")

    def keep(self, kept: Any, problems: tuple[Problem, ...]) -> _Checked:
        """Only the rows whose `kept` flag is true, with `problems` added."""
        merged = tuple(sorted((*self.problems, *problems), key=_row_order))
        if self.records is not None:
            records = [r for r, keep in zip(self.records, kept, strict=True) if keep]
            positions = [p for p, keep in zip(self.positions, kept, strict=True) if keep]
            return _Checked(positions, merged, records=records)
        if self.features is not None:
            features = self.features[kept]
            return _Checked(features.index.to_numpy(), merged, features=features)
        import numpy as np

        kept = np.asarray(kept, dtype=bool)
        columns = {name: column[kept] for name, column in (self.columns or {}).items()}
        return _Checked(np.asarray(self.positions)[kept], merged, columns=columns)

    def frame(self, names: Sequence[str]) -> pd.DataFrame:
        import pandas as pd

        if self.features is not None:
            return self.features[list(names)]
        if self.records is not None:
            return pd.DataFrame(self.records, columns=list(names))
        return pd.DataFrame({name: (self.columns or {})[name] for name in names})


def _by_record(rows: Rows, model: LoadedModel) -> _Checked:
    schema = model.schema
    records = rows.as_records(schema.feature_names)  # without the extras, when ignored
    valid, positions, problems = validate_records(
        records, schema, allow_extra=rows.allow_extra, sent=rows.names
    )
    return _Checked(positions, problems, records=valid)


def _by_column(rows: Rows, model: LoadedModel) -> _Checked:
    """Clean rows straight into columns; the others through a reference validator."""
    import numpy as np

    schema = model.schema
    if rows.records is not None:
        columns = clean_records(rows.records, schema)
        if columns is not None:
            return _Checked(np.arange(rows.count), (), columns=columns)
        # Not all clean: the row validator names every fault without a frame column per key.
        valid, positions, problems = validate_records(
            rows.records, schema, allow_extra=rows.allow_extra
        )
        return _Checked(positions, problems, columns=_as_columns(valid, schema))
    columns, clean = clean_columns(rows.as_columns(), rows.count, schema)
    if clean.all():
        return _Checked(np.arange(rows.count), (), columns=columns)
    rest = np.flatnonzero(~clean)
    checked = validate(rows.frame(rest), schema, allow_extra=rows.allow_extra)
    passed = checked.features.index.to_numpy()
    if not columns:  # a column is missing: every row went to the reference
        return _by_frame_of(checked)
    for name, column in columns.items():
        column[passed] = checked.features[name].to_numpy(dtype=column.dtype)
    clean[passed] = True
    kept = {name: column[clean] for name, column in columns.items()}
    return _Checked(np.flatnonzero(clean), checked.problems, columns=kept)


def _by_frame(rows: Rows, model: LoadedModel) -> _Checked:
    return _by_frame_of(validate(rows.frame(), model.schema, allow_extra=rows.allow_extra))


def _by_frame_of(checked: Validated) -> _Checked:
    features = checked.features
    return _Checked(features.index.to_numpy(), checked.problems, features=features)


def _as_columns(records: list[dict[str, Any]], schema: ModelSchema) -> dict[str, Any]:
    import numpy as np

    return {
        feature.name: np.array(
            [record[feature.name] for record in records],
            dtype=object if isinstance(feature, CategoricalFeature) else float,
        )
        for feature in schema.features
    }


def _values(model: LoadedModel, form: CompiledModel | None, checked: _Checked) -> Any:
    if checked.records is not None and form is not None:
        return form.predict(checked.records)
    if form is not None:
        columns = checked.columns
        if columns is None:  # checked by the frame validator
            frame = checked.frame(model.schema.feature_names)
            columns = {str(name): frame[name].to_numpy() for name in frame.columns}
        return form.predict_columns(columns, lambda: model.pipeline[-1])
    return _pipeline_values(model, checked)


def _pipeline_values(model: LoadedModel, checked: _Checked) -> np.ndarray:
    import numpy as np

    from shared.kernels import cores_for

    if not len(checked.positions):
        return np.empty(0)
    frame = checked.frame(model.schema.feature_names)
    with cores_for(len(frame)):
        return np.asarray(model.pipeline.predict(frame), dtype=float)


def _row_order(problem: Problem) -> int:
    return -1 if problem.row is None else problem.row


def _outside(model: LoadedModel, checked: _Checked) -> Outside:
    trained = trained_ranges(model)
    if checked.records is not None:
        return outside_records(checked.records, trained)
    return outside_columns(checked.as_columns(), checked.count, trained)


def _strict(model: LoadedModel, checked: _Checked, outside: Outside) -> tuple[_Checked, Outside]:
    flagged = outside.any()
    if not (any(flagged) if isinstance(flagged, list) else flagged.any()):
        return checked, outside
    trained = trained_ranges(model)
    problems = strict_problems(outside, list(checked.positions), trained)
    kept = [not flag for flag in flagged] if isinstance(flagged, list) else ~flagged
    return checked.keep(kept, problems), outside.keep(kept)


def in_domain(values: Any, minimum: float | None) -> Any:
    """Values raised to the target's minimum where they fall below it (a withheld bound, None
    or NaN, stays withheld)."""
    if minimum is None:
        return values
    if isinstance(values, list):
        return [v if v is None else max(minimum, v) for v in values]
    import numpy as np

    return np.maximum(minimum, values)


def column_bounds(
    calibrated: Calibration,
    quantile: float,
    values: Any,
    columns: Mapping[str, Any],
    withheld: Any,
    minimum: float | None,
) -> tuple[Any, Any]:
    """Numpy bounds for a batch: the values -+ the quantile times each row's scale, NaN where
    withheld, the lower bound raised to the minimum. Training measures intervals with this."""
    import numpy as np

    widths = quantile * np.asarray(calibrated.scale_columns(columns, len(values)), dtype=float)
    lower, upper = values - widths, values + widths
    hidden = np.asarray(withheld, dtype=bool)
    lower[hidden], upper[hidden] = np.nan, np.nan
    return in_domain(lower, minimum), upper


def _interval(
    model: LoadedModel, values: Any, checked: _Checked, outside: Outside, options: Options
) -> Interval | None:
    if options.interval is None:
        return None
    quantile = interval_half_width(model, options)
    calibrated = calibration(model)
    assert calibrated is not None  # interval_half_width has raised otherwise
    minimum = model.schema.target_minimum
    withheld = outside.any()
    if isinstance(values, list):
        scales = calibrated.scale_records(checked.records or [])
        lower, upper = [], []
        for value, scale, hidden in zip(values, scales, withheld, strict=True):
            width = quantile * scale
            lower.append(None if hidden else value - width)
            upper.append(None if hidden else value + width)
        return Interval(options.interval, in_domain(lower, minimum), upper)
    columns = checked.as_columns()
    lower, upper = column_bounds(calibrated, quantile, values, columns, withheld, minimum)
    return Interval(options.interval, lower, upper)


def _by_form(model: LoadedModel, form: CompiledModel, frame: pd.DataFrame) -> Any:
    columns = {str(name): frame[name].to_numpy() for name in frame.columns}
    return form.predict_columns(columns, lambda: model.pipeline[-1])


def _explanation(model: LoadedModel, checked: _Checked) -> Explanation:
    import pandas as pd

    from shared.predict._explain import shapley

    names = list(model.schema.feature_names)
    background = pd.DataFrame(model.metadata["explanations"]["background"])[names]
    rows = checked.frame(names)
    form = serving_form(model)
    # The coalitions are many times the rows: the serving form evaluates them, as it does
    # every prediction, and gives the same floats as the pipeline.
    evaluate = model.pipeline.predict if form is None else functools.partial(_by_form, model, form)
    base, contributions = shapley(evaluate, rows, background, names)
    return Explanation(base, {name: contributions[:, i] for i, name in enumerate(names)})
