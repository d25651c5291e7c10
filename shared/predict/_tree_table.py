"""Boosted trees over a few inputs, folded into one lookup table.

Every split compares one input column with a threshold, so a column's value matters only
through which of its split thresholds it lies under. Cutting each input at all of its
thresholds gives a grid of cells on which every tree's answer is constant; the table holds the
ensemble's answer for each cell, summed tree by tree in the order scikit-learn sums them, so a
lookup returns the very same float. A row then costs one binary search per input instead of a
walk down every tree.

Built from the serving form (models/compile.py) when a batch first needs it; a model whose
grid would be too large gets no table and keeps the trees' own predictor.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

MAX_CELLS = 2_000_000  # 16 MB of float64
BUCKETS = 1 << 16  # per numeric input: 512 KB of guesses where its value lies among thresholds


class TreeTable:
    def __init__(self, inputs: Sequence[Mapping[str, Any]], axes: list[Any], table: Any) -> None:
        self.inputs = inputs
        self.axes = axes  # per input: its thresholds (numbers) or category -> index (one-hot)
        self.table = table.ravel()
        self.sizes = table.shape
        self.bins = [_Bins(axis) if isinstance(axis, np.ndarray) else None for axis in axes]

    def predict(self, columns: Mapping[str, Any]) -> np.ndarray:
        """The ensemble's predictions for canonical columns, as CompiledModel.matrix takes.

        Values must be finite (validated): the table has no cell for a missing value."""
        index: np.ndarray | int = 0
        parts = zip(self.inputs, self.axes, self.bins, self.sizes, strict=True)
        for spec, axis, bins, size in parts:
            column = columns[spec["feature"]]
            if bins is None:
                values = np.asarray(column, dtype=object)
                position = np.full(len(values), size - 1, dtype=np.intp)
                for category, i in axis.items():
                    position[values == category] = i
            else:
                position = bins.of((np.asarray(column, dtype=float) - spec["mean"]) / spec["scale"])
            index = index * size + position
        return np.asarray(self.table[index], dtype=float)


class _Bins:
    """Where values lie among ascending thresholds: `np.searchsorted(thresholds, values,
    side="left")`, the very same numbers, several times faster on a large batch.

    A binary search per value costs branches the processor mispredicts. Instead, each value's
    place in an even grid over the thresholds' span gives a guess, looked up in a table; the
    guess is checked against the two thresholds around it, exactly, and only the few values it
    fails (those near a threshold, or outside the span, or NaN) are searched for.
    """

    def __init__(self, thresholds: np.ndarray) -> None:
        self.thresholds = thresholds
        self.guessed = len(thresholds) >= 2
        if not self.guessed:
            return
        self.low = float(thresholds[0])
        self.per_unit = BUCKETS / (float(thresholds[-1]) - self.low)
        middles = self.low + (np.arange(BUCKETS + 1) + 0.5) / self.per_unit
        self.guesses = np.searchsorted(thresholds, middles, side="left")
        self.below = np.concatenate([[-np.inf], thresholds])  # the threshold under each bin
        self.above = np.concatenate([thresholds, [np.inf]])  # and the one over it

    def of(self, values: np.ndarray) -> np.ndarray:
        if not self.guessed:
            return np.searchsorted(self.thresholds, values, side="left")
        with np.errstate(invalid="ignore", over="ignore"):  # NaN, huge: a guess that fails
            bucket = ((values - self.low) * self.per_unit).astype(np.intp)
        np.clip(bucket, 0, BUCKETS, out=bucket)
        position = self.guesses[bucket]
        wrong = np.flatnonzero(
            ~((self.below[position] < values) & (values <= self.above[position]))
        )
        position[wrong] = np.searchsorted(self.thresholds, values[wrong], side="left")
        return position


def build(form: Mapping[str, Any], max_cells: int = MAX_CELLS) -> TreeTable | None:
    """The table for a serving form of kind "trees", or None if its grid is too large."""
    inputs = form["inputs"]
    estimator = form["estimator"]
    grid = _Grid(inputs, _thresholds(estimator["trees"], sum(_width(s) for s in inputs)))
    if int(np.prod(grid.sizes)) > max_cells:
        return None
    table = np.full(grid.sizes, float(estimator["baseline"]))
    for tree in estimator["trees"]:
        table += grid.answers(tree)
    if estimator.get("link") == "log":  # as scikit-learn's predict: exp of the summed trees
        table = np.exp(table)
    return TreeTable(inputs, grid.axes, table)


def _width(spec: Mapping[str, Any]) -> int:
    return len(spec["categories"]) if spec["kind"] == "one_hot" else 1


def _thresholds(trees: Sequence[Mapping[str, Any]], n_columns: int) -> list[list[float]]:
    """Each matrix column's distinct split thresholds, ascending."""
    found: list[set[float]] = [set() for _ in range(n_columns)]
    for tree in trees:
        for feature, threshold, leaf in zip(
            tree["feature"], tree["threshold"], tree["leaf"], strict=True
        ):
            if not leaf:
                found[feature].add(threshold)
    return [sorted(values) for values in found]


class _Grid:
    """The cells: one axis per input, cut at every threshold of its matrix column(s).

    A value's bin in a column is how many of the column's thresholds lie below it, so
    value <= thresholds[k] iff bin <= k. A one-hot input's axis is its categories plus "none".
    """

    def __init__(self, inputs: Sequence[Mapping[str, Any]], thresholds: list[list[float]]):
        self.inputs = inputs
        self.n_columns = len(thresholds)
        self.bins = [len(t) + 1 for t in thresholds]
        self.rank = [{t: k for k, t in enumerate(column)} for column in thresholds]
        self.axes: list[Any] = []
        self.sizes: list[int] = []
        # per input: for each position on its axis, the bin it puts each matrix column in
        self.cells: list[list[list[tuple[int, int]]]] = []
        start = 0
        for spec in inputs:
            if spec["kind"] == "one_hot":
                span = range(start, start + _width(spec))
                self.axes.append({c: i for i, c in enumerate(spec["categories"])})
                self.sizes.append(len(spec["categories"]) + 1)
                self.cells.append(
                    [
                        [
                            (c, bisect_left(thresholds[c], float(c - start == position)))
                            for c in span
                        ]
                        for position in range(len(span) + 1)
                    ]
                )
            else:
                self.axes.append(np.array(thresholds[start], dtype=float))
                self.sizes.append(len(thresholds[start]) + 1)
                self.cells.append([])
            start += _width(spec)
        self.columns = _starts(inputs)  # each input's first matrix column

    def answers(self, tree: Mapping[str, Any]) -> np.ndarray:
        """One tree's answer on every cell: each leaf fills the box of cells that reach it."""
        grid = np.full(self.sizes, np.nan)
        feature, threshold, leaf, value = (
            tree[k] for k in ("feature", "threshold", "leaf", "value")
        )
        stack = [(0, [0] * self.n_columns, [b - 1 for b in self.bins])]
        while stack:
            node, low, high = stack.pop()
            if leaf[node]:
                for block in self._box(low, high):
                    grid[block] = value[node]
                continue
            column = feature[node]
            k = self.rank[column][threshold[node]]
            left_high, right_low = list(high), list(low)
            left_high[column] = min(high[column], k)
            right_low[column] = max(low[column], k + 1)
            stack.append((tree["left"][node], low, left_high))
            stack.append((tree["right"][node], right_low, high))
        if np.isnan(grid).any():  # the leaves must cover every cell exactly once
            raise ValueError("tree leaves do not partition the input grid")
        return grid

    def _box(self, low: Sequence[int], high: Sequence[int]) -> Iterator[tuple[slice, ...]]:
        """The cells in a leaf's box, as blocks of basic slices (cheap to assign)."""
        runs = []
        for column, cells in zip(self.columns, self.cells, strict=True):
            if not cells:
                runs.append([slice(low[column], high[column] + 1)])
            else:
                chosen = [
                    position
                    for position, bins in enumerate(cells)
                    if all(low[c] <= b <= high[c] for c, b in bins)
                ]
                runs.append([slice(p, p + 1) for p in chosen])
        return itertools.product(*runs)


def _starts(inputs: Sequence[Mapping[str, Any]]) -> list[int]:
    starts, start = [], 0
    for spec in inputs:
        starts.append(start)
        start += _width(spec)
    return starts
