"""`python -m models bundle [--store DIR]`: train the small bundled models and publish them."""

from __future__ import annotations

import argparse
from pathlib import Path

from models import data
from models.training import train
from shared.model_store import LocalFolder, publish
from shared.schema import SCHEMAS

BUNDLED_VERSION = "1"
MODELS_DIR = Path(__file__).resolve().parent


def bundle(store: Path, version: str) -> None:
    datasets = {"customer_needs": data.customers(5_000), "market_trend": data.market(200)}
    for name, frame in datasets.items():
        trained = train(name, SCHEMAS[name], frame, version)
        pointer = publish(LocalFolder(store), name, version, trained.artifact, trained.metadata)
        metrics = trained.metadata["metrics"]["holdout"]
        print(f"{name}: version {pointer['version']} sha256 {pointer['sha256'][:12]} {metrics}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m models")
    commands = parser.add_subparsers(dest="command", required=True)
    bundle_parser = commands.add_parser("bundle", help="train and publish the bundled models")
    bundle_parser.add_argument("--store", type=Path, default=MODELS_DIR)
    bundle_parser.add_argument("--version", default=BUNDLED_VERSION)
    args = parser.parse_args(argv)
    if args.command == "bundle":
        bundle(args.store, args.version)


if __name__ == "__main__":
    main()
