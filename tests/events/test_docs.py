"""docs/events.md says what the code does: its table of default mappings is the real one."""

from __future__ import annotations

import re

from metricache.events import DEFAULT_MAPPINGS

from tests.events.cli import ROOT

_ROW = re.compile(r"^\| `([^`]+)` \| ([a-z, ]+) \| (\w+) \| ([^|]*)\|$")


def test_the_default_mappings_table_matches_the_code() -> None:
    text = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    section = text.split("## The default mappings", 1)[1].split("\n## ", 1)[0]
    documented: list[tuple[str, list[str], str, dict[str, object]]] = []
    for line in section.splitlines():
        found = _ROW.match(line)
        if found:
            metadata: dict[str, object] = {}
            for item in found[4].split(","):
                if item.strip():
                    key, _, value = item.strip().partition("=")
                    metadata[key] = value
            documented.append((found[1], found[2].split(", "), found[3], metadata))
    actual: list[tuple[str, list[str], str, dict[str, object]]] = [
        (m.event, [b.value for b in m.backends], m.priority.value, dict(m.metadata))
        for m in DEFAULT_MAPPINGS
    ]
    assert documented == actual
