"""Training time for 1M customer rows on one core, median of a few runs.

    .venv/bin/python -m bench.training [--rows 1000000] [--runs 3]

Generation of the synthetic data is timed apart from training (cleaning, cross-validation of
the three candidates, refit, calibration, held-out evaluation and serialisation).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

from models import data
from models.recipes import RECIPES
from models.training import creation_time, train


def measure(rows: int, runs: int) -> dict[str, float]:
    generate, fit = [], []
    for run in range(runs):
        started = time.perf_counter()
        frame = data.customers(rows, seed=run)
        generate.append(time.perf_counter() - started)
        started = time.perf_counter()
        trained = train(RECIPES["customer_needs"], frame, None, creation_time())
        fit.append(time.perf_counter() - started)
    return {
        "rows": rows,
        "runs": runs,
        "generate_s": statistics.median(generate),
        "train_s": statistics.median(fit),
        "train_min_s": min(fit),
        "train_max_s": max(fit),
        "rows_per_s": rows / statistics.median(fit),
        "chosen": trained.metadata["estimator"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.training")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    result = measure(args.rows, args.runs)
    print(f"machine: {platform.machine()}, {platform.python_version()}, one core (threadpool 1)")
    print("| rows | runs | generate (median s) | train (median s) | min | max | rows/s | chosen |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    print(
        f"| {result['rows']:,} | {result['runs']} | {result['generate_s']:.2f} | "
        f"{result['train_s']:.2f} | {result['train_min_s']:.2f} | {result['train_max_s']:.2f} | "
        f"{result['rows_per_s']:,.0f} | {result['chosen']} |"
    )


if __name__ == "__main__":
    main()
