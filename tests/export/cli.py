"""Running the ``metricache`` command in a subprocess, away from the caller's settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["ROOT", "clean_env", "metricache_cli"]

ROOT = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    """Return this environment without ``METRICACHE_*`` variables, with the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRICACHE_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def metricache_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    """Run ``metricache ARGS`` in ``cwd`` and return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", *args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        timeout=120,
        check=False,
    )
