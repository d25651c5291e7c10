"""Boosted trees that each split on one input, read for one row without walking them.

An additive ensemble (each tree splits on the matrix columns of one input only, as the
customer model's interaction constraints make it) answers a row through one position per
input: for a number, how many of the input's split thresholds lie below it; for a one-hot
category, its index among the categories (or "none of them"). Each tree is then a list of its
leaf values by position, and a row sums one entry per tree, in the trees' order from the same
baseline: the very float a walk down every tree gives, at a few microseconds instead of a
fraction of a millisecond.

Plain Python: single rows never import numpy. Batches use the lookup table (_tree_table).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Tree = Mapping[str, Any]


class Additive:
    def __init__(
        self,
        baseline: float,
        positions: list[Callable[[Sequence[float]], int]],
        trees: list[tuple[int, list[float]]],
    ) -> None:
        self.baseline = baseline
        self.positions = positions  # per input: the row's position on its axis
        self.trees = trees  # per tree: its input, and its leaf value at each position

    def raw(self, x: Sequence[float]) -> float:
        """The summed trees for one row of the ColumnTransformer's output (before any link)."""
        at = [position(x) for position in self.positions]
        total = self.baseline
        for owner, values in self.trees:
            total += values[at[owner]]
        return total


def build(inputs: Sequence[Mapping[str, Any]], estimator: Mapping[str, Any]) -> Additive | None:
    """The ensemble read by position, or None when a tree splits on more than one input."""
    spans = _spans(inputs)
    owner_of = {column: i for i, span in enumerate(spans) for column in span}
    owners = []
    for tree in estimator["trees"]:
        used = {
            owner_of[c] for c, leaf in zip(tree["feature"], tree["leaf"], strict=True) if not leaf
        }
        if len(used) > 1:
            return None
        owners.append(used.pop() if used else 0)
    axes = [
        _thresholds(t for t, i in zip(estimator["trees"], owners, strict=True) if i == owner)
        if spec["kind"] != "one_hot"
        else None
        for owner, spec in enumerate(inputs)
    ]
    trees = [
        (i, _by_category(tree, spans[i]) if (axis := axes[i]) is None else _by_bin(tree, axis))
        for tree, i in zip(estimator["trees"], owners, strict=True)
    ]
    positions = [
        _bin(span.start, axis) if axis is not None else _category(span)
        for span, axis in zip(spans, axes, strict=True)
    ]
    return Additive(float(estimator["baseline"]), positions, trees)


def _spans(inputs: Sequence[Mapping[str, Any]]) -> list[range]:
    spans, start = [], 0
    for spec in inputs:
        width = len(spec["categories"]) if spec["kind"] == "one_hot" else 1
        spans.append(range(start, start + width))
        start += width
    return spans


def _thresholds(trees: Any) -> list[float]:
    """The distinct split thresholds of an input's trees, ascending."""
    found = {
        threshold
        for tree in trees
        for threshold, leaf in zip(tree["threshold"], tree["leaf"], strict=True)
        if not leaf
    }
    return sorted(found)


def _bin(column: int, thresholds: list[float]) -> Callable[[Sequence[float]], int]:
    """A value's bin: how many thresholds lie below it, so value <= thresholds[k] iff bin <= k."""
    return lambda x: bisect_left(thresholds, x[column])


def _category(span: range) -> Callable[[Sequence[float]], int]:
    """The index of the one-hot column that is set, or the span's width when none is."""
    return lambda x: next((j for j, c in enumerate(span) if x[c] == 1.0), len(span))


def _by_bin(tree: Tree, thresholds: list[float]) -> list[float]:
    """A tree on one number: its leaf value in each bin, each leaf filling its bins."""
    rank = {t: k for k, t in enumerate(thresholds)}
    values = [0.0] * (len(thresholds) + 1)
    stack = [(0, 0, len(thresholds))]
    while stack:
        node, low, high = stack.pop()
        if tree["leaf"][node]:
            values[low : high + 1] = [tree["value"][node]] * (high - low + 1)
            continue
        k = rank[tree["threshold"][node]]
        if low <= min(high, k):
            stack.append((tree["left"][node], low, min(high, k)))
        if max(low, k + 1) <= high:
            stack.append((tree["right"][node], max(low, k + 1), high))
    return values


def _by_category(tree: Tree, span: range) -> list[float]:
    """A tree on one one-hot input: its leaf value for each category, and for none of them."""
    values = []
    for hot in range(len(span) + 1):
        node = 0
        while not tree["leaf"][node]:
            x = 1.0 if tree["feature"][node] - span.start == hot else 0.0
            node = tree["left"][node] if x <= tree["threshold"][node] else tree["right"][node]
        values.append(tree["value"][node])
    return values
