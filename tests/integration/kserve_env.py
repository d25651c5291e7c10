"""A virtual environment of its own for kserve's client, made once and kept at .venv-kserve.

kserve pins pandas<3 and brings a large dependency tree, so it never joins .venv: the tests run
its client there as a subprocess (kserve_driver.py). `python -m tests.integration.kserve_env`
makes the environment ahead of a test run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.integration.support import REPO, run_setup_step

KSERVE_REQUIREMENT = "kserve==0.21.0"
VENV = REPO / ".venv-kserve"
# Written last, so a half-made environment (an interrupted install) is made again.
MARKER_NAME = ".marketcast-requirement"


def ensure(venv: Path = VENV) -> Path:
    """The environment's python, after creating the environment if it cannot import kserve."""
    python = venv / "bin" / "python"
    if _ready(venv, python):
        return python
    shutil.rmtree(venv, ignore_errors=True)
    run_setup_step([sys.executable, "-m", "venv", str(venv)], "create the virtual environment")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run_setup_step([*pip, KSERVE_REQUIREMENT], f"install {KSERVE_REQUIREMENT}")
    run_setup_step([str(python), "-c", "import kserve"], "import kserve")
    (venv / MARKER_NAME).write_text(KSERVE_REQUIREMENT + "\n")
    return python


def _ready(venv: Path, python: Path) -> bool:
    marker = venv / MARKER_NAME
    if not python.exists() or not marker.exists():
        return False
    if marker.read_text().strip() != KSERVE_REQUIREMENT:
        return False
    check = subprocess.run(
        [str(python), "-c", "import kserve"], capture_output=True, timeout=120, check=False
    )
    return check.returncode == 0


if __name__ == "__main__":
    sys.stdout.write(f"{ensure()}\n")
