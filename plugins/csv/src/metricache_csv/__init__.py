"""CSV format for metricache: a stable header, one row per sample value.

Installed, this package offers the format ``csv`` (``text/csv``) to
``metricache.render``, ``metricache export --format csv`` and the HTTP endpoint,
through its entry point. :func:`parse` loads a table back into the
:class:`~metricache.snapshot.Snapshot` it was rendered from.
"""

from __future__ import annotations

from collections.abc import Iterable

from metricache import hookimpl
from metricache.formats import Format
from metricache.snapshot import Snapshot

from metricache_csv.table import (
    FIXED_COLUMNS,
    LABEL_PREFIX,
    ParseError,
    format_number,
    parse,
    render,
)

__all__ = [
    "FIXED_COLUMNS",
    "LABEL_PREFIX",
    "CsvFormat",
    "ParseError",
    "format_number",
    "parse",
    "render",
]


class CsvFormat(Format):
    """The metricache CSV table (RFC 4180, UTF-8, header first)."""

    name = "csv"
    content_type = "text/csv; charset=utf-8; header=present"
    media_types = ("text/csv",)
    extension = "csv"

    def render(self, snapshot: Snapshot) -> bytes:
        """Render ``snapshot`` as a CSV table."""
        return render(snapshot)


@hookimpl
def metricache_formats() -> Iterable[Format]:
    """Offer the CSV format."""
    return [CsvFormat()]
