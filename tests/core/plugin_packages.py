"""Throwaway plugin packages, built and installed for real, and the command run beside them.

A package is a real distribution (``pyproject.toml``, hatchling, an entry point in the
group ``metricache``) installed with ``uv pip install``: into the test environment
for a well-behaved plugin, or with ``--target`` into a directory of its own for
broken ones, which only the tests that put that directory on the path see.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "RECORD",
    "ROOT",
    "cli_env",
    "install_into",
    "make_package",
    "metricache_command",
    "record",
    "run_cli",
    "uv",
]

ROOT = Path(__file__).resolve().parents[2]


def uv() -> str:
    """The ``uv`` executable (it installs the packages)."""
    found = shutil.which("uv")
    assert found is not None, "uv must be on PATH to install the test plugins"
    return found


def make_package(root: Path, distribution: str, plugins: dict[str, str]) -> Path:
    """Write a distribution whose entry points ``name = "module"`` hold the given sources."""
    root.mkdir(parents=True)
    for module, source in plugins.items():
        (root / "src" / module).mkdir(parents=True)
        (root / "src" / module / "__init__.py").write_text(source, encoding="utf-8")
    entry_points = "\n".join(f'{module} = "{module}"' for module in plugins)
    packages = ", ".join(f'"src/{module}"' for module in plugins)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [project]
            name = "{distribution}"
            version = "1.2.3"
            dependencies = []

            [project.entry-points.metricache]
            {entry_points}

            [tool.hatch.build.targets.wheel]
            packages = [{packages}]

            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            """
        ).format(distribution=distribution, entry_points=entry_points, packages=packages),
        encoding="utf-8",
    )
    return root


def install_into(target: Path, packages: Sequence[Path]) -> Path:
    """Install ``packages`` with ``uv pip install --target``; return ``target``."""
    subprocess.run(
        [
            *(uv(), "pip", "install", "--quiet", "--python", sys.executable),
            *("--target", str(target)),
            *(str(p) for p in packages),
        ],
        check=True,
        timeout=300,
    )
    return target


def cli_env(**extra: str) -> dict[str, str]:
    """This environment without ``METRICACHE_*`` variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METRICACHE_")}
    env.update(extra)
    return env


def metricache_command() -> list[str]:
    """The installed ``metricache`` script of this interpreter's environment."""
    script = Path(sys.executable).with_name("metricache")
    return [str(script)] if script.exists() else [sys.executable, "-m", "metricache.cli.main"]


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``metricache ARGS`` in ``cwd`` with ``env`` added to a clean environment."""
    return _run([*metricache_command(), *args], cwd, env)


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command,
        cwd=cwd,
        env=cli_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


RECORD = """\
import json
import sys

import metricache

jobs = metricache.Counter("jobs", "Jobs done", ["queue"])
jobs.labels("mail").inc(3)
syncer = metricache.start()
report = syncer.flush()
with metricache.open_reader() as reader:
    view = reader.view()
rendered = {name: metricache.render(view, name or None).decode() for name in sys.argv[1:]}
print(json.dumps({"synced": report.ok, "rendered": rendered}))
"""
"""What an application does: record, start(), sync, read the view, render it.

Its arguments name the formats to render (an empty one: the default format).
"""


def record(
    cwd: Path, formats: list[str], **env: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    """Run :data:`RECORD` in a fresh interpreter in ``cwd``; return it and its answer."""
    (cwd / "record.py").write_text(RECORD, encoding="utf-8")
    done = _run([sys.executable, "record.py", *formats], cwd, env)
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return done, answer
