"""Train, publish and roll back the marketcast models.

    python -m models train NAME [--data FILE.csv] [--rows N] [--out DIR]
                                [--exclude-features A,B]
    python -m models publish NAME --to STORE [--from DIR] [--version VERSION]
    python -m models rollback NAME --to VERSION [--store STORE]
    python -m models regenerate          rebuild the bundled models/ folder

A store is a local folder or gs://bucket/prefix. `train` writes a new version into a local
store (build/models by default) and makes it current there; `publish` copies a version from
one store to another and moves current.json last.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from models import data
from models.publishing import publish_version, rollback
from models.recipes import RECIPES
from models.report import summary
from models.retraining.reading import parse_csv
from models.training import Trained, creation_time, train
from shared import settings
from shared.errors import MarketcastError
from shared.schema import MODELS
from shared.store import Backend, LocalFolder, open_backend, publish
from shared.uploads import FileProblem

MODELS_DIR = Path(__file__).resolve().parent
BUILD_DIR = MODELS_DIR.parent / "build" / "models"
BUNDLED_CREATED = 1795824000  # 2026-11-28T00:00:00Z: the bundled models' fixed creation time


def train_into(
    store: Backend,
    name: str,
    frame: pd.DataFrame,
    created_epoch: int | None,
    exclude: Sequence[str] = (),
) -> Trained:
    created = creation_time({"SOURCE_DATE_EPOCH": str(created_epoch)} if created_epoch else None)
    trained = train(RECIPES[name], frame, None, created, progress=_progress, exclude=exclude)
    publish(store, name, trained.metadata["version"], trained.artifact, trained.metadata)
    return trained


def regenerate() -> None:
    """Rebuild models/<name>/ for every model from the default data, reproducibly."""
    for name in MODELS:
        with tempfile.TemporaryDirectory() as staging:
            trained = train_into(
                LocalFolder(Path(staging)), name, data.default_data(name, None), BUNDLED_CREATED
            )
            shutil.rmtree(MODELS_DIR / name, ignore_errors=True)
            shutil.copytree(Path(staging) / name, MODELS_DIR / name)
        print(summary(trained.metadata))


def _store(location: str) -> Backend:
    config = settings.from_env()
    return open_backend(location, config.storage_timeout_seconds, config.storage_emulator_host)


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m models", description=__doc__.split("\n\n")[0])
    commands = root.add_subparsers(dest="command", required=True)
    names = sorted(MODELS)
    trainer = commands.add_parser("train", help="train a new version into a local store")
    trainer.add_argument("name", choices=names)
    trainer.add_argument("--data", type=Path, help="CSV with the features and the target")
    trainer.add_argument("--rows", type=int, help="rows of synthetic data (default data if unset)")
    trainer.add_argument("--out", default=str(BUILD_DIR), help="local store (default build/models)")
    trainer.add_argument(
        "--exclude-features",
        default="",
        help="comma-separated features the model must not use (e.g. gender); the cost is reported",
    )
    publisher = commands.add_parser("publish", help="publish a version to a store")
    publisher.add_argument("name", choices=names)
    publisher.add_argument("--to", required=True, help="destination store: folder or gs://...")
    publisher.add_argument(
        "--from",
        dest="source",
        default=str(MODELS_DIR),
        help="source store (default: the bundled models/ folder)",
    )
    publisher.add_argument("--version", help="version to publish (default: the source's current)")
    roller = commands.add_parser("rollback", help="make an earlier version current again")
    roller.add_argument("name", choices=names)
    roller.add_argument("--to", required=True, dest="version", help="the version to restore")
    roller.add_argument("--store", default=os.environ.get("MODEL_STORE") or str(MODELS_DIR))
    commands.add_parser("regenerate", help="rebuild the bundled models/ folder")
    return root


def _training_data(name: str, path: str | None, rows: int | None) -> pd.DataFrame:
    """The file given, read as a labelled upload is (any layout a scored upload may have), or
    the model's own data."""
    if path is None:
        return data.default_data(name, rows)
    return parse_csv(Path(path).read_bytes(), MODELS[name].schema)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "train":
            frame = _training_data(args.name, args.data, args.rows)
            exclude = [name.strip() for name in args.exclude_features.split(",") if name.strip()]
            trained = train_into(_store(args.out), args.name, frame, None, exclude)
            print(summary(trained.metadata))
            print(f"{args.name}: version {trained.metadata['version']} is current in {args.out}")
        elif args.command == "publish":
            previous, new = publish_version(
                _store(args.source), _store(args.to), args.name, args.version
            )
            change = "unchanged" if previous == new else f"{previous or 'nothing'} -> {new}"
            print(f"{args.name}: current version in {args.to}: {change}")
        elif args.command == "rollback":
            previous, new = rollback(_store(args.store), args.name, args.version)
            print(f"{args.name}: current version in {args.store}: {previous or 'nothing'} -> {new}")
        else:
            regenerate()
    except (MarketcastError, FileProblem, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
