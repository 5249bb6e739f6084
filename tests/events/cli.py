"""Running ``metricache`` in a subprocess, away from the caller's ``METRICACHE_*`` settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["ROOT", "clean_env", "run_cli"]

ROOT = Path(__file__).resolve().parents[2]


def clean_env() -> dict[str, str]:
    """Return this environment without ``METRICACHE_*`` variables, with the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRICACHE_")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def run_cli(
    *args: str, cwd: Path, timeout: float = 120.0, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``metricache ARGS`` in ``cwd`` and return what it did."""
    return subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", *args],
        cwd=cwd,
        env=env if env is not None else clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
