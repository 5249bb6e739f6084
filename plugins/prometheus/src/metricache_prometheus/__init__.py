"""Prometheus text 0.0.4 and OpenMetrics 1.0 formats for metricache.

Installed, this package offers the formats ``prometheus`` and ``openmetrics`` to
``metricache.render`` and to every command and endpoint, through its entry point.
"""

from __future__ import annotations

from collections.abc import Iterable

from metricache import hookimpl
from metricache.formats import Format
from metricache.snapshot import Snapshot

from metricache_prometheus.text import (
    escape_label_value,
    format_value,
    render_openmetrics,
    render_prometheus,
)

__all__ = [
    "OpenMetricsFormat",
    "PrometheusFormat",
    "escape_label_value",
    "format_value",
    "render_openmetrics",
    "render_prometheus",
]


class PrometheusFormat(Format):
    """Prometheus text exposition format 0.0.4."""

    name = "prometheus"
    content_type = "text/plain; version=0.0.4; charset=utf-8"
    media_types = ("text/plain",)
    extension = "prom"

    def render(self, snapshot: Snapshot) -> bytes:
        """Render ``snapshot`` as Prometheus text."""
        return render_prometheus(snapshot)


class OpenMetricsFormat(Format):
    """OpenMetrics 1.0 text format."""

    name = "openmetrics"
    content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    media_types = ("application/openmetrics-text",)
    extension = "om.txt"

    def render(self, snapshot: Snapshot) -> bytes:
        """Render ``snapshot`` as OpenMetrics text."""
        return render_openmetrics(snapshot)


@hookimpl
def metricache_formats() -> Iterable[Format]:
    """Offer the Prometheus and OpenMetrics text formats."""
    return [PrometheusFormat(), OpenMetricsFormat()]
