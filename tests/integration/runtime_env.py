"""A virtual environment on the Python that deploy.sh deploys to, with requirements.txt alone.

deploy.sh's default `--runtime` (say python313) names the Python the functions run on in Cloud
Run functions; the suite itself runs on .venv's. The environment is made once per requirements.txt
and kept under the user's cache folder (`$XDG_CACHE_HOME`, else ~/.cache), in marketcast/.
Wheels only: a pin with no wheel for that Python fails here, as it would slow or break a deploy.
`python -m tests.integration.runtime_env` makes it ahead of a test run.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.integration.support import REPO, run_setup_step

REQUIREMENTS = REPO / "requirements.txt"
# Written last, so a half-made environment (an interrupted install) is made again.
MARKER_NAME = ".marketcast-requirements"


def deploy_runtime() -> str:
    """deploy.sh's default runtime id, such as python313."""
    match = re.search(r'"\$\{RUNTIME:=(python3[0-9]+)\}"', (REPO / "deploy.sh").read_text())
    assert match is not None, "deploy.sh sets no default RUNTIME"
    return match.group(1)


def version_of(runtime: str) -> str:
    """python313 -> 3.13"""
    return f"3.{runtime.removeprefix('python3')}"


def find_interpreter(version: str) -> Path:
    """`python3.X` on PATH if it runs as 3.X, else the newest pyenv install of 3.X."""
    candidates = [Path(found)] if (found := shutil.which(f"python{version}")) else []
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    installs = sorted(
        (pyenv_root / "versions").glob(f"{version}.*/bin/python{version}"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path.parts[-3])],
        reverse=True,
    )
    for candidate in [*candidates, *installs]:
        if _reports(candidate, version):
            return candidate
    raise RuntimeError(
        f"Python {version}, the runtime deploy.sh deploys to, is not installed: put "
        f"python{version} on PATH (or `pyenv install {version}`) to test the functions on it"
    )


def ensure(version: str, cache: Path | None = None) -> Path:
    """The environment's python on Python `version`, made first if it is missing or stale."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    venv = (cache or _cache_folder()) / f"python{version}-{digest[:12]}"
    venv.parent.mkdir(parents=True, exist_ok=True)
    # Test workers (pytest-xdist) may ask at once: one makes it, the others wait for it.
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        python = venv / "bin" / "python"
        if _ready(venv, python, digest):
            return python
        shutil.rmtree(venv, ignore_errors=True)
        interpreter = find_interpreter(version)
        run_setup_step(
            [str(interpreter), "-m", "venv", str(venv)], f"create a Python {version} venv"
        )
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        run_setup_step(
            [*pip, "--only-binary=:all:", "-r", str(REQUIREMENTS)], "install requirements.txt"
        )
        (venv / MARKER_NAME).write_text(digest + "\n")
        return python


def _cache_folder() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "marketcast"


def _reports(python: Path, version: str) -> bool:
    try:
        done = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except OSError:
        return False
    return done.returncode == 0 and done.stdout.strip() == version


def _ready(venv: Path, python: Path, digest: str) -> bool:
    marker = venv / MARKER_NAME
    return python.exists() and marker.exists() and marker.read_text().strip() == digest


if __name__ == "__main__":
    sys.stdout.write(f"{ensure(version_of(deploy_runtime()))}\n")
