"""JSON format for metricache: the versioned ``metricache/v1`` shape.

Installed, this package offers the format ``json`` (``application/json``) to
``metricache.render``, ``metricache export --format json`` and the HTTP endpoint,
through its entry point. :func:`parse` loads a document back into the
:class:`~metricache.snapshot.Snapshot` it was rendered from.
"""

from __future__ import annotations

from collections.abc import Iterable

from metricache import hookimpl
from metricache.formats import Format
from metricache.snapshot import Snapshot

from metricache_json.codec import SCHEMA, ParseError, decode_number, encode_number, parse, render

__all__ = [
    "SCHEMA",
    "JsonFormat",
    "ParseError",
    "decode_number",
    "encode_number",
    "parse",
    "render",
]


class JsonFormat(Format):
    """The ``metricache/v1`` JSON document (one line, UTF-8)."""

    name = "json"
    content_type = "application/json"
    media_types = ("application/json",)
    extension = "json"

    def render(self, snapshot: Snapshot) -> bytes:
        """Render ``snapshot`` as a ``metricache/v1`` JSON document."""
        return render(snapshot)


@hookimpl
def metricache_formats() -> Iterable[Format]:
    """Offer the JSON format."""
    return [JsonFormat()]
