"""How a prometheus_client gauge's ``multiprocess_mode`` maps to a metricache merge mode.

prometheus_client names how the values of one gauge from several processes combine
(in multiprocess mode, over the files of one host); metricache's merge modes say the
same over every live instance of every host. A ``live*`` mode and its plain twin map
to the same merge mode: metricache's merged view only ever holds live instances'
gauges (a dead instance's gauges leave it after the liveness TTL).
"""

from __future__ import annotations

from collections.abc import Mapping

from metricache.snapshot import GaugeMerge

__all__ = ["DEFAULT_MERGE", "ENUM_MERGE", "INFO_MERGE", "MULTIPROCESS_MODES", "merge_of_mode"]

MULTIPROCESS_MODES: Mapping[str, GaugeMerge] = {
    "all": GaugeMerge.PER_INSTANCE,
    "liveall": GaugeMerge.PER_INSTANCE,
    "sum": GaugeMerge.SUM,
    "livesum": GaugeMerge.SUM,
    "max": GaugeMerge.MAX,
    "livemax": GaugeMerge.MAX,
    "min": GaugeMerge.MIN,
    "livemin": GaugeMerge.MIN,
    "mostrecent": GaugeMerge.LAST,
    "livemostrecent": GaugeMerge.LAST,
}
"""Every ``multiprocess_mode`` of prometheus_client and the merge mode it maps to."""

DEFAULT_MERGE = GaugeMerge.PER_INSTANCE
"""A gauge without a known mode (a custom collector's) merges like prometheus_client's
default mode, ``all``: one series per instance."""

INFO_MERGE = GaugeMerge.MAX
"""An ``Info`` is a gauge of value 1 per label set: ``max`` keeps every label set that
some live instance reports at 1, as one process would show it."""

ENUM_MERGE = GaugeMerge.PER_INSTANCE
"""An ``Enum`` says which one state a process is in: per instance, each instance keeps
exactly one state at 1, as one process would show it."""


def merge_of_mode(mode: str) -> GaugeMerge:
    """Return the merge mode of a ``multiprocess_mode`` (the default for an unknown one)."""
    return MULTIPROCESS_MODES.get(mode, DEFAULT_MERGE)
