"""docs/store-author-guide.md: its excerpts match the example store, its Python runs.

An excerpt may start with import lines, then a line ``...``, then the code: each
import line is one of the file's, the code is copied verbatim, and every name the
code uses that the file imports is imported in the excerpt (so a reader knows where
``OutcomeUnknown`` or ``Capability`` comes from).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
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


def split(excerpt: str) -> tuple[list[str], str]:
    """The excerpt's import lines and its code."""
    head, sep, code = excerpt.partition("\n...\n\n")
    if not sep:
        return [], excerpt
    return head.splitlines(), code


def source_of(code: str) -> Path:
    found = [path for path in SOURCES if code in path.read_text(encoding="utf-8")]
    assert found, f"not copied verbatim from the example:\n{code}"
    return found[0]


def imported_names(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


def used_names(tree: ast.AST) -> set[str]:
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


@pytest.mark.parametrize("excerpt", excerpts(), ids=lambda e: split(e)[1].splitlines()[0][:40])
def test_an_excerpt_is_copied_verbatim_from_the_example(excerpt: str) -> None:
    imports, code = split(excerpt)
    source = source_of(code).read_text(encoding="utf-8")
    lines = source.splitlines()
    for line in imports:
        assert line in lines, f"{line!r} is not an import line of the example"


@pytest.mark.parametrize(
    "excerpt",
    [e for e in excerpts() if not e.startswith("[")],  # TOML excerpts import nothing
    ids=lambda e: split(e)[1].splitlines()[0][:40],
)
def test_an_excerpt_imports_every_name_it_takes_from_elsewhere(excerpt: str) -> None:
    imports, code = split(excerpt)
    source = ast.parse(source_of(code).read_text(encoding="utf-8"))
    from_elsewhere = imported_names(source) - {"annotations"}
    given = imported_names(ast.parse("\n".join(imports)))
    needed = used_names(ast.parse(textwrap.dedent(code))) & from_elsewhere
    assert needed <= given, f"the excerpt uses {sorted(needed - given)} without importing them"


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
