"""Draw metricache's data flow as SVG: ``docs/diagrams/dataflow.svg``.

    uv run python docs/diagrams/dataflow.py           # rewrite the SVG
    uv run python docs/diagrams/dataflow.py --check   # exit 1 when it is stale

The drawing is data: boxes (where, a title, lines of text) and arrows between box
sides. Change the boxes here, never the SVG; ``tests/docs/test_diagram.py`` fails
when the committed SVG differs from what this script draws.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from xml.sax.saxutils import escape

import attrs

__all__ = ["ARROWS", "BOXES", "OUTPUT", "PANELS", "main", "render"]

OUTPUT = Path(__file__).resolve().parent / "dataflow.svg"
WIDTH, HEIGHT = 980, 470
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


@attrs.frozen
class Panel:
    """A shaded area with a title: where the boxes inside it run."""

    x: int
    y: int
    w: int
    h: int
    title: str
    fill: str


@attrs.frozen
class Box:
    """A component: a bold title and a few lines of explanation."""

    key: str
    x: int
    y: int
    w: int
    h: int
    title: str
    lines: tuple[str, ...] = ()

    def anchor(self, side: str, at: float = 0.5) -> tuple[float, float]:
        """A point on a side (``top``, ``bottom``, ``left``, ``right``), ``at`` along it."""
        if side == "top":
            return (self.x + self.w * at, self.y)
        if side == "bottom":
            return (self.x + self.w * at, self.y + self.h)
        if side == "left":
            return (self.x, self.y + self.h * at)
        return (self.x + self.w, self.y + self.h * at)


@attrs.frozen
class Arrow:
    """From one box side to another, with an optional label; dashed for control flow."""

    start: tuple[str, str, float]
    end: tuple[str, str, float]
    label: str = ""
    dashed: bool = False


PANELS = (
    Panel(10, 10, 320, 450, "In each process (one instance)", "#eef4fb"),
    Panel(350, 10, 260, 450, "Shared store (a plugin)", "#f4f1e8"),
    Panel(630, 10, 340, 450, "In any process: read, render, deliver", "#eef7ee"),
)

BOXES = (
    Box("code", 30, 50, 135, 80, "Your code", ("counter.inc()", "gauge.set()", "hist.observe()")),
    Box(
        "events",
        180,
        50,
        135,
        80,
        "EventRouter",
        ("publish(name, …)", "event handlers", "(a hook)"),
    ),
    Box(
        "registry",
        30,
        170,
        285,
        70,
        "Registry",
        ("one series per label set, in memory;", "changed series join a tracker"),
    ),
    Box(
        "syncer",
        30,
        290,
        285,
        90,
        "Syncer (background thread)",
        (
            "every sync.interval: the deltas since",
            "the last confirmed sync; a failed sync",
            "keeps them for the next one",
        ),
    ),
    Box(
        "store",
        370,
        150,
        220,
        170,
        "Store",
        (
            "redis · memcached · file · memory",
            "counters, histograms: keys",
            "shared by every instance",
            "gauges: a map per instance",
            "every key: TTL sync.retention",
            "capabilities → strategy",
        ),
    ),
    Box(
        "reader",
        650,
        50,
        300,
        62,
        "Reader: merged_snapshot()",
        ("every live instance added up", "(local_only: one instance's view)"),
    ),
    Box("snapshot", 650, 140, 300, 50, "Snapshot", ("immutable families and samples",)),
    Box(
        "format", 650, 220, 300, 50, "Format (a plugin)", ("prometheus · openmetrics · json · csv",)
    ),
    Box("exporter", 650, 300, 140, 70, "Exporter (a plugin)", ("file · stdout · http",)),
    Box("endpoint", 810, 300, 140, 70, "HTTP endpoint", ("metricache serve", "WSGI · ASGI")),
    Box(
        "coordinator",
        650,
        395,
        300,
        50,
        "Export coordinator",
        ("exports before the TTL; one per period",),
    ),
)

ARROWS = (
    Arrow(("code", "bottom", 0.5), ("registry", "top", 0.23)),
    Arrow(("events", "bottom", 0.5), ("registry", "top", 0.76)),
    Arrow(("registry", "bottom", 0.5), ("syncer", "top", 0.5)),
    Arrow(("syncer", "right", 0.5), ("store", "left", 0.75), "deltas"),
    Arrow(("store", "right", 0.2), ("reader", "left", 0.5), "read"),
    Arrow(("reader", "bottom", 0.5), ("snapshot", "top", 0.5)),
    Arrow(("snapshot", "bottom", 0.5), ("format", "top", 0.5)),
    Arrow(("format", "bottom", 0.23), ("exporter", "top", 0.5), "bytes"),
    Arrow(("format", "bottom", 0.77), ("endpoint", "top", 0.5)),
    Arrow(("coordinator", "top", 0.23), ("exporter", "bottom", 0.5)),
    Arrow(("coordinator", "left", 0.5), ("store", "bottom", 0.5), "lease, TTL", dashed=True),
)


def _point(spec: tuple[str, str, float]) -> tuple[float, float]:
    boxes = {box.key: box for box in BOXES}
    key, side, at = spec
    return boxes[key].anchor(side, at)


def _n(value: float) -> str:
    return f"{value:g}"


def render() -> str:
    """Return the SVG document."""
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="{FONT}">',
        "<title>metricache data flow: metrics, syncer, store, reader, formats, exporters</title>",
        "<defs>",
        '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse">',
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#333"/>',
        "</marker>",
        "</defs>",
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    for panel in PANELS:
        out.append(
            f'<rect x="{panel.x}" y="{panel.y}" width="{panel.w}" height="{panel.h}" rx="10" '
            f'fill="{panel.fill}" stroke="#c8c8c8"/>'
        )
        out.append(
            f'<text x="{panel.x + 12}" y="{panel.y + 22}" font-size="13" fill="#555">'
            f"{escape(panel.title)}</text>"
        )
    for box in BOXES:
        out.append(
            f'<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="6" '
            'fill="#ffffff" stroke="#4a4a4a"/>'
        )
        middle = box.x + box.w / 2
        out.append(
            f'<text x="{_n(middle)}" y="{box.y + 20}" font-size="13" font-weight="bold" '
            f'text-anchor="middle" fill="#222">{escape(box.title)}</text>'
        )
        for number, line in enumerate(box.lines):
            out.append(
                f'<text x="{_n(middle)}" y="{box.y + 38 + 16 * number}" font-size="11" '
                f'text-anchor="middle" fill="#333">{escape(line)}</text>'
            )
    for arrow in ARROWS:
        (x1, y1), (x2, y2) = _point(arrow.start), _point(arrow.end)
        dash = ' stroke-dasharray="5 4"' if arrow.dashed else ""
        out.append(
            f'<line x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}" stroke="#333" '
            f'stroke-width="1.4"{dash} marker-end="url(#arrow)"/>'
        )
        if arrow.label:
            out.append(
                f'<text x="{_n((x1 + x2) / 2 + 4)}" y="{_n((y1 + y2) / 2 - 6)}" font-size="11" '
                f'font-style="italic" fill="#333">{escape(arrow.label)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the SVG, or with ``--check`` return 1 when the committed one is stale."""
    parser = argparse.ArgumentParser(description="Draw docs/diagrams/dataflow.svg.")
    parser.add_argument("--check", action="store_true", help="fail if the SVG is stale")
    args = parser.parse_args(argv)
    drawing = render()
    current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else None
    if args.check:
        if current != drawing:
            print(
                "stale: docs/diagrams/dataflow.svg (run: uv run python docs/diagrams/dataflow.py)"
            )
            return 1
        return 0
    if current != drawing:
        OUTPUT.write_text(drawing, encoding="utf-8")
        print("wrote docs/diagrams/dataflow.svg")
    return 0


if __name__ == "__main__":
    sys.exit(main())
