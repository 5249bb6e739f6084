"""Fenced code blocks of the Markdown pages, with the file and line they start on."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from pathlib import Path

import attrs

__all__ = ["ROOT", "CodeBlock", "code_blocks", "documentation_pages"]

ROOT = Path(__file__).resolve().parents[2]

_OPENING = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`]*)$")


@attrs.frozen
class CodeBlock:
    """One fenced block: where it is, its language (first word of the info string), its text.

    ``line`` is the line number of the first line of code (the one after the fence).
    """

    path: Path
    line: int
    language: str
    text: str
    marker: str = ""

    @property
    def where(self) -> str:
        """``docs/page.md:12``: the block's place, relative to the repository."""
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


_MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<marker>[\w-]+)\s*-->$")


def code_blocks(path: Path) -> Iterator[CodeBlock]:
    """Yield every fenced code block of the Markdown file at ``path``.

    An HTML comment ``<!-- docs-test: NAME -->`` on the line right before a fence
    becomes the block's ``marker`` (what the block needs to run, e.g. ``redis``).
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    number = 0
    previous = ""
    while number < len(lines):
        found = _OPENING.match(lines[number])
        if found is None:
            if lines[number].strip():
                previous = lines[number].strip()
            number += 1
            continue
        fence = found["fence"]
        language = found["info"].strip().split(" ")[0].lower() if found["info"].strip() else ""
        marker = _MARKER.match(previous)
        start = number + 1
        body: list[str] = []
        number += 1
        while number < len(lines):
            stripped = lines[number].strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                break
            body.append(lines[number])
            number += 1
        else:
            raise ValueError(f"{path}:{start}: a code block is never closed")
        number += 1
        previous = ""
        text = textwrap.dedent("\n".join(body)) + "\n"
        yield CodeBlock(path, start + 1, language, text, marker["marker"] if marker else "")


def documentation_pages() -> list[Path]:
    """Every Markdown page whose blocks must run: ``docs/**/*.md`` and ``README.md``."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
