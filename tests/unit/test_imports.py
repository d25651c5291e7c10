"""What importing the packages costs, and that every module imports in one direction.

The import checks run in a child process: this one has long since imported everything.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGES = ("shared", "functions", "models")

NOTHING_HEAVY_LOADED = """
import sys
heavy = {"google.cloud.storage", "pandas", "numpy", "sklearn", "joblib"}
assert not heavy & set(sys.modules), sorted(heavy & set(sys.modules))
"""

IMPORT_ONLY = "import shared.store" + NOTHING_HEAVY_LOADED
REQUEST_PATH_PACKAGES = (
    "import shared.predict, shared.validation, shared.codecs, functions.protocols"
    + NOTHING_HEAVY_LOADED
)

LOCAL_FOLDER_AND_UNUSED_CLOUD_STORES = (
    """
from shared.store import ModelStore, ObjectStore, open_backend, read_pointer
store = ModelStore(open_backend("models", 5.0), 60.0)
assert read_pointer(store.backend, "customer_needs")["version"]
open_backend("gs://bucket/models", 5.0)
ObjectStore(5.0)
"""
    + NOTHING_HEAVY_LOADED
)


@pytest.mark.parametrize(
    "program",
    [IMPORT_ONLY, LOCAL_FOLDER_AND_UNUSED_CLOUD_STORES, REQUEST_PATH_PACKAGES],
    ids=[
        "import",
        "a local folder store, and cloud stores not yet used",
        "the request path's packages",
    ],
)
def test_heavy_libraries_are_not_imported_until_they_are_used(program: str) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPOSITORY,
        timeout=120,
        check=False,
        capture_output=True,
    )

    assert finished.returncode == 0, finished.stderr.decode()[-2000:]


def test_no_module_imports_one_that_imports_it() -> None:
    graph = {module: set(imported_by(path)) for module, path in product_modules().items()}

    assert len([module for module in graph if module.startswith("shared.store")]) > 1
    circles = [module for module in graph if module in reachable(graph, module)]
    assert circles == []


def product_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in (REPOSITORY / package).rglob("*.py"):
            parts = path.relative_to(REPOSITORY).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_by(path: Path) -> list[str]:
    """The product's modules `path` imports when it runs, lazy imports included (not the ones
    only a type checker sees)."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and ast.unparse(block.test) == "TYPE_CHECKING"
        for statement in block.body
        for node in ast.walk(statement)
    }
    names = []
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return [name for name in names if name.startswith(tuple(f"{p}." for p in PACKAGES))]


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    waiting = list(graph.get(start, ()))
    while waiting:
        module = waiting.pop()
        if module in seen or module not in graph:
            continue
        seen.add(module)
        waiting += graph[module]
    return seen
