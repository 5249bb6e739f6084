"""The data-flow diagram is what docs/diagrams/dataflow.py draws, and concepts.md shows it."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from tests.docs.markdown import ROOT
from tests.docs.scripts import dataflow

SVG = ROOT / "docs" / "diagrams" / "dataflow.svg"


def test_the_committed_svg_is_a_fresh_drawing() -> None:
    fresh: str = dataflow().render()
    assert SVG.read_text(encoding="utf-8") == fresh, (
        "docs/diagrams/dataflow.svg is stale: run uv run python docs/diagrams/dataflow.py"
    )


def test_the_svg_is_well_formed_and_names_every_box() -> None:
    root = ET.fromstring(SVG.read_text(encoding="utf-8"))
    texts = {element.text for element in root.iter("{http://www.w3.org/2000/svg}text")}
    for box in dataflow().BOXES:
        assert box.title in texts
    for arrow in dataflow().ARROWS:
        keys = {box.key for box in dataflow().BOXES}
        assert arrow.start[0] in keys
        assert arrow.end[0] in keys


def test_concepts_shows_the_diagram() -> None:
    concepts = (ROOT / "docs" / "concepts.md").read_text(encoding="utf-8")
    assert "](diagrams/dataflow.svg)" in concepts
