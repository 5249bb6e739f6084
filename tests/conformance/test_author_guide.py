"""docs/store-author-guide.md: its excerpts match the example store, its Python runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "store-author-guide.md"
EXAMPLE = ROOT / "examples" / "sqlite_store"
SOURCES = [
    EXAMPLE / "pyproject.toml",
    EXAMPLE / "src" / "metricache_sqlite" / "__init__.py",
    EXAMPLE / "tests" / "test_sqlite_store.py",
]
# Blocks that show output or a layout rather than copy a file, by how they start.
NOT_EXCERPTS = ("examples/sqlite_store/", "metricache conformance: ", "atomic.concurrent")


def blocks(language: str) -> list[str]:
    text = GUIDE.read_text(encoding="utf-8")
    return re.findall(rf"^```{language}\n(.*?)^```$", text, re.M | re.S)


def excerpts() -> list[str]:
    return [b for b in blocks("text") + blocks("toml") if not b.startswith(NOT_EXCERPTS)]


def test_the_guide_has_excerpts_of_every_part() -> None:
    assert len(excerpts()) >= 10


@pytest.mark.parametrize("excerpt", excerpts(), ids=lambda e: e.splitlines()[0][:40])
def test_an_excerpt_is_copied_verbatim_from_the_example(excerpt: str) -> None:
    assert any(excerpt in path.read_text(encoding="utf-8") for path in SOURCES), excerpt


@pytest.mark.parametrize("code", blocks("python"), ids=lambda c: c.splitlines()[-1][:40])
def test_a_python_block_runs(code: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
