"""Rows of raw values as a protocol decoded them: by record (JSON objects) or by column.

Rows are numbered 0, 1, ... in the order they were sent; every validator names rows by that
number, and each protocol turns it into its own convention (a CSV line, a BigQuery call) at its
edge.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.validation._values import ABSENT

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Rows:
    """`records` (a key a record lacks is absent, unlike an explicit null) or `columns` (each of
    `count` values). `allow_extra`: fields the model does not know are ignored, not faults."""

    count: int
    records: Sequence[Mapping[str, Any]] | None = None
    columns: Mapping[str, Sequence[Any]] | None = None
    allow_extra: bool = False

    @classmethod
    def of_records(cls, records: Sequence[Mapping[str, Any]], *, allow_extra: bool = False) -> Rows:
        return cls(len(records), records=records, allow_extra=allow_extra)

    @classmethod
    def of_columns(
        cls, columns: Mapping[str, Sequence[Any]], count: int, *, allow_extra: bool = False
    ) -> Rows:
        return cls(count, columns=columns, allow_extra=allow_extra)

    @property
    def names(self) -> list[str]:
        """Every name the rows were sent with, in the order first seen."""
        if self.columns is not None:
            return list(self.columns)
        return list(dict.fromkeys(key for item in self.records or () for key in item))

    def as_records(self, wanted: Collection[str]) -> Sequence[Mapping[str, Any]]:
        """One mapping per row; from columns, only the `wanted` ones if extras are ignored."""
        if self.records is not None:
            return self.records
        columns = dict(self.columns or {})
        if self.allow_extra:
            columns = {name: values for name, values in columns.items() if name in wanted}
        if not columns:  # none of the model's columns: rows with no fields, every one absent
            return [{} for _ in range(self.count)]
        names = list(columns)
        return [dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)]

    def as_columns(self) -> Mapping[str, Sequence[Any]]:
        """One sequence per column; from records, `ABSENT` where a record lacks a key."""
        if self.columns is not None:
            return self.columns
        records = self.records or ()
        keys = dict.fromkeys(key for item in records for key in item)
        return {key: [item.get(key, ABSENT) for item in records] for key in keys}

    def frame(self, positions: Any = None) -> pd.DataFrame:
        """The rows at `positions` (ints; default: all) as a frame of raw values, indexed by
        them."""
        import numpy as np  # only the frame validator builds frames
        import pandas as pd

        columns = self.as_columns()
        if positions is None:
            return pd.DataFrame(dict(columns), index=pd.RangeIndex(self.count), dtype=object)
        index = np.asarray(positions, dtype=int)
        picked = {name: [values[i] for i in index] for name, values in columns.items()}
        return pd.DataFrame(picked, index=pd.Index(index), dtype=object)
