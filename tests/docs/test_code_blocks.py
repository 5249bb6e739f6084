"""Every code block of the documentation that can run, runs.

* Every ``python`` block of ``docs/**/*.md`` and ``README.md`` runs in a fresh
  interpreter, in an empty temporary directory (holding a copy of the data files of
  ``docs/``, such as the JSON Schema, for blocks that read them "from the
  repository root"), with no ``METRICACHE_*`` variables but those given below. A
  failure names the page and the line; the traceback's lines are the page's lines.
* A block marked ``<!-- docs-test: redis -->`` on the line before its fence needs a
  Redis server: it gets one from the test fixtures through the variables the docs
  name, ``METRICACHE_STORE=redis`` and ``METRICACHE_STORE_URL``.
* Every ``metricache ...`` command of a ``console``, ``sh``, ``bash`` or ``shell``
  block that is safe to run (see :func:`why_not_run`) runs in the same kind of
  directory and must exit 0.

Blocks that cannot run by nature (YAML, TOML, a Dockerfile, code that needs Flask,
Django or FastAPI) use another fence: ``text``, ``yaml``, ``toml``, ``ini``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from tests.docs.markdown import ROOT, CodeBlock, code_blocks, documentation_pages

SHELLS = ("console", "sh", "bash", "shell")
MARKERS = ("redis",)

BLOCKS = [block for page in documentation_pages() for block in code_blocks(page)]
PYTHON = [block for block in BLOCKS if block.language == "python"]

_RUN = (
    "import sys\n"
    "path, name = sys.argv[1], sys.argv[2]\n"
    "source = open(path, encoding='utf-8').read()\n"
    "exec(compile(source, name, 'exec'), {'__name__': '__main__'})\n"
)


def clean_env() -> dict[str, str]:
    """This environment without ``METRICACHE_*`` variables."""
    return {k: v for k, v in os.environ.items() if not k.startswith("METRICACHE_")}


def prepare(directory: Path) -> None:
    """Give a block's working directory the data files of ``docs/`` under ``docs/``."""
    for source in (ROOT / "docs").rglob("*"):
        if source.is_file() and source.suffix in (".json", ".svg"):
            target = directory / source.relative_to(ROOT)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def env_for(block: CodeBlock, request: pytest.FixtureRequest) -> dict[str, str]:
    """The environment of a block: clean, plus a server when its marker asks for one."""
    env = clean_env()
    if block.marker == "redis":
        server = request.getfixturevalue("redis_server")
        env["METRICACHE_STORE"] = "redis"
        env["METRICACHE_STORE_URL"] = server.url
    elif block.marker:
        pytest.fail(f"{block.where}: unknown docs-test marker {block.marker!r}; known: {MARKERS}")
    return env


@pytest.mark.parametrize("block", PYTHON, ids=[block.where for block in PYTHON])
def test_python_block_runs(
    block: CodeBlock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    env = env_for(block, request)
    prepare(tmp_path)
    script = tmp_path / ".block.py"
    # Blank lines before the code make the traceback's line numbers the page's.
    script.write_text("\n" * (block.line - 1) + block.text, encoding="utf-8")
    name = block.path.relative_to(ROOT).as_posix()
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(script), name],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{block.where}: the python block failed (exit {done.returncode})\n"
            f"{done.stderr[-4000:]}",
            pytrace=False,
        )


# -- shell blocks ----------------------------------------------------------------------------


@attrs.frozen
class Command:
    """One ``metricache`` command of a shell block: where it is and its arguments."""

    where: str
    argv: tuple[str, ...]


def shell_commands(block: CodeBlock) -> Iterator[tuple[int, str]]:
    """The commands of a shell block with their line numbers (continuations joined).

    In a ``console`` block only lines starting with ``$ `` are commands (the rest is
    output); in the others every line that is not blank or a comment is one.
    """
    lines = block.text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        start = block.line + number
        number += 1
        if block.language == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.rstrip().endswith("\\") and number < len(lines):
            line = line.rstrip()[:-1] + " " + lines[number].strip()
            number += 1
        yield start, line


def metricache_commands() -> list[Command]:
    """Every ``metricache`` (or ``uv run metricache``) command of every shell block."""
    found = []
    for block in BLOCKS:
        if block.language not in SHELLS:
            continue
        for line_number, line in shell_commands(block):
            words = shlex.split(line, comments=True)
            # Only the command itself: what a pipe or a redirection adds is not metricache's.
            for position, word in enumerate(words):
                if word in _SHELL_OPERATORS or word.startswith((">", "<", "2>")):
                    words = words[:position]
                    break
            if words[:2] == ["uv", "run"]:
                words = words[2:]
            if words and words[0] == "metricache":
                where = f"{block.path.relative_to(ROOT).as_posix()}:{line_number}"
                found.append(Command(where, tuple(words[1:])))
    return found


_SHELL_OPERATORS = ("|", "||", "&&", ";", "&")
_SUBCOMMANDS = ("conformance", "demo", "export", "plugins", "serve", "status", "sync")


def _option_values(argv: tuple[str, ...], *names: str) -> list[str]:
    values = []
    for position, word in enumerate(argv):
        for name in names:
            if word == name and position + 1 < len(argv):
                values.append(argv[position + 1])
            elif word.startswith(name + "="):
                values.append(word[len(name) + 1 :])
    return values


def why_not_run(argv: tuple[str, ...]) -> str:
    """Why a command is not run here (empty when it is safe to run).

    Safe: any ``--help``; ``plugins``; ``conformance memory``; and ``export``,
    ``status`` and ``sync`` on the ``memory`` store or a ``file`` store in a
    relative directory, writing only to relative paths with the ``file`` and
    ``stdout`` exporters, without ``--schedule`` or ``--watch``. Not run: what serves
    forever (``serve``, ``demo``), needs a server (``--store redis``), or reaches
    outside its directory (absolute paths, other exporters).
    """
    if "--help" in argv or "-h" in argv:
        return ""
    command = next((word for word in argv if word in _SUBCOMMANDS), "")
    if command == "plugins":
        return ""
    if command == "conformance":
        rest = [w for w in argv if not w.startswith("-") and w != "conformance"]
        return "" if rest == ["memory"] and "--all" not in argv else "a store other than memory"
    if command not in ("export", "status", "sync"):
        return f"{command or 'this command'} does not end or needs a server"
    if {"--schedule", "--watch", "--config"} & set(argv):
        return "runs until stopped, or reads a configuration file of the page"
    stores = _option_values(argv, "--store")
    if any(store not in ("memory", "file") for store in stores):
        return f"needs the store {stores[0]}"
    options = _option_values(argv, "--option", "-o", "--exporter-option", "-O", "--output")
    paths = [value.partition("=")[2] if "=" in value else value for value in options]
    if any(path.startswith(("/", "~")) for path in paths):
        return "writes outside its directory"
    if set(_option_values(argv, "--exporter", "-e")) - {"file", "stdout"}:
        return "delivers over the network"
    return ""


COMMANDS = metricache_commands()
SAFE = [command for command in COMMANDS if not why_not_run(command.argv)]


def test_the_docs_show_runnable_commands_of_every_safe_kind() -> None:
    shown = {next((w for w in c.argv if w in _SUBCOMMANDS), "--help") for c in SAFE}
    assert {"plugins", "export", "conformance"} <= shown
    assert any("--help" in c.argv for c in SAFE)


@pytest.mark.parametrize("command", SAFE, ids=[c.where for c in SAFE])
def test_metricache_command_exits_0(command: Command, tmp_path: Path) -> None:
    prepare(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "metricache.cli.main", *command.argv],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(
            f"{command.where}: metricache {shlex.join(command.argv)} exited "
            f"{done.returncode}\n{done.stderr[-4000:]}",
            pytrace=False,
        )
