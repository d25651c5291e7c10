"""Which features of a row lie outside what the model was trained on.

Training records what its fit rows held (metadata.json `training.ranges`): each numeric
feature's least and greatest value, and how often each category occurred. A numeric value
outside [least, greatest] or a category the fit rows never held is outside the training
range: the model extrapolates there, and its interval was never calibrated for it. That is
separate from validation, which decides what a valid value is at all (the schema's limits).

Plain Python for records; numpy for columns (batches only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import Problem
from shared.once import once_per
from shared.schema import CategoricalFeature, ModelSchema

if TYPE_CHECKING:
    from shared.store import LoadedModel

OUTSIDE = "outside_training_range"  # the output's name in every protocol
SEPARATOR = ";"  # between feature names in one CSV cell
MAX_TABLE_BITS = 16  # up to this many features, a batch's shown values sit in one table by code


@dataclass(frozen=True)
class Range:
    """What the fit rows held for one feature: [minimum, maximum], or the categories seen."""

    feature: str
    minimum: float | None = None
    maximum: float | None = None
    seen: frozenset[str] | None = None

    def describe(self) -> str:
        if self.seen is not None:
            return "categories seen in training: " + ", ".join(sorted(self.seen))
        return f"training range {self.minimum:g} to {self.maximum:g}"


@once_per
def trained_ranges(model: LoadedModel) -> tuple[Range, ...]:
    """`ranges` of a loaded model, read once per loaded version."""
    return ranges(model.metadata, model.schema)


def ranges(metadata: Mapping[str, Any], schema: ModelSchema) -> tuple[Range, ...]:
    """The trained ranges of the schema's features; none for a model trained without them."""
    recorded = metadata.get("training", {}).get("ranges") or {}
    found = []
    for feature in schema.features:
        entry = recorded.get(feature.name)
        if not isinstance(entry, Mapping):
            continue
        if isinstance(feature, CategoricalFeature):
            seen = frozenset(str(k) for k, count in entry.items() if count)
            found.append(Range(feature.name, seen=seen))
        elif "min" in entry and "max" in entry:
            found.append(Range(feature.name, float(entry["min"]), float(entry["max"])))
    return tuple(found)


@dataclass(frozen=True)
class Outside:
    """Per feature, which rows lie outside its trained range (lists or numpy arrays of bools,
    one per predicted row)."""

    count: int
    masks: Mapping[str, Any]

    def any(self) -> Any:
        """Per row, whether any feature is outside: a list, or a numpy array for batches."""
        masks = list(self.masks.values())
        if not masks:
            return [False] * self.count
        if isinstance(masks[0], list):
            return [any(flags) for flags in zip(*masks, strict=True)]
        import numpy as np

        return np.logical_or.reduce(masks)

    def names(self) -> list[list[str]]:
        """Per row, the features outside, in schema order. Rows with the same features share
        one list (a large batch costs no list per row): read these lists, never change them."""
        return self._per_combination(lambda names: names)

    def texts(self) -> list[str]:
        """Per row, the features outside joined for one CSV cell ("" when none)."""
        return self._per_combination(SEPARATOR.join)

    def _per_combination(self, shown: Callable[[list[str]], Any]) -> list[Any]:
        features = list(self.masks)
        masks = list(self.masks.values())
        if masks and not isinstance(masks[0], list) and len(masks) <= MAX_TABLE_BITS:
            return self._per_code(features, shown)
        codes = self._codes()
        table = {code: shown(_named(features, code)) for code in set(codes)}
        return [table[code] for code in codes]

    def _per_code(self, features: list[str], shown: Callable[[list[str]], Any]) -> list[Any]:
        """Numpy masks: each row's value taken from a table indexed by its code, one pass."""
        import numpy as np

        codes = self._code_array()
        present = np.flatnonzero(np.bincount(codes, minlength=1))
        if len(present) == 1:  # the common batch: every row alike (most often, none outside)
            return [shown(_named(features, int(present[0])))] * self.count
        table = np.empty(1 << len(features), dtype=object)
        for code in present.tolist():
            table[code] = shown(_named(features, code))
        return list(table[codes].tolist())

    def _codes(self) -> list[int]:
        """Per row, which features are outside as the bits of one number."""
        masks = list(self.masks.values())
        if not masks:
            return [0] * self.count
        if isinstance(masks[0], list):
            return [
                sum(int(flag) << bit for bit, flag in enumerate(flags))
                for flags in zip(*masks, strict=True)
            ]
        return list(self._code_array().tolist())

    def _code_array(self) -> Any:
        """`_codes` of numpy masks, as a numpy array."""
        import numpy as np

        codes = np.zeros(self.count, dtype=np.int64)
        for bit, mask in enumerate(self.masks.values()):
            codes |= np.asarray(mask, dtype=np.int64) << bit
        return codes

    def counts(self) -> dict[str, int]:
        return {name: len(_flagged(mask)) for name, mask in self.masks.items()}

    def keep(self, kept: Any) -> Outside:
        """Only the rows whose `kept` flag is true."""
        masks = {name: _select(mask, kept) for name, mask in self.masks.items()}
        return Outside(sum(1 for flag in _as_bools(kept) if flag), masks)


def outside_records(records: Sequence[Mapping[str, Any]], trained: Sequence[Range]) -> Outside:
    masks = {r.feature: [_is_outside(record[r.feature], r) for record in records] for r in trained}
    return Outside(len(records), masks)


def outside_columns(columns: Mapping[str, Any], count: int, trained: Sequence[Range]) -> Outside:
    import numpy as np

    masks = {}
    for r in trained:
        column = columns[r.feature]
        if r.seen is not None:
            masks[r.feature] = _unseen(np.asarray(column, dtype=object), r.seen)
        else:
            values = np.asarray(column, dtype=float)
            masks[r.feature] = (values < r.minimum) | (values > r.maximum)
    return Outside(count, masks)


def _unseen(values: Any, seen: frozenset[str]) -> Any:
    """Where a category column holds one the fit rows never did. A batch holds few distinct
    categories: each unseen one is looked for alone, and most batches have none."""
    import numpy as np

    try:
        unseen = set(values) - seen
    except TypeError:  # an unhashable value: compared one by one
        return ~np.isin(values, list(seen))
    mask = np.zeros(len(values), dtype=bool)
    for category in unseen:
        mask |= values == category
    return mask


def strict_problems(
    outside: Outside, positions: Sequence[int], trained: Sequence[Range]
) -> tuple[Problem, ...]:
    """One fault per feature outside its range, for a request that asked for `strict`."""
    described = {r.feature: r.describe() for r in trained}
    problems = []
    for row, names in zip(positions, outside.names(), strict=True):
        problems += [
            Problem(int(row), name, f"outside the {described[name]} (strict)") for name in names
        ]
    return tuple(problems)


def _named(features: Sequence[str], code: int) -> list[str]:
    """The features whose bits are set in `code`, in order."""
    return [name for bit, name in enumerate(features) if code >> bit & 1]


def _is_outside(value: Any, trained: Range) -> bool:
    if trained.seen is not None:
        return value not in trained.seen
    return not (trained.minimum <= value <= trained.maximum)


def _flagged(mask: Any) -> list[int]:
    if isinstance(mask, list):
        return [row for row, flag in enumerate(mask) if flag]
    import numpy as np

    return list(np.flatnonzero(mask).tolist())


def _select(mask: Any, kept: Any) -> Any:
    if isinstance(mask, list):
        return [flag for flag, keep in zip(mask, _as_bools(kept), strict=True) if keep]
    import numpy as np

    return mask[np.asarray(kept, dtype=bool)]


def _as_bools(flags: Any) -> list[bool]:
    return flags if isinstance(flags, list) else [bool(f) for f in flags]
