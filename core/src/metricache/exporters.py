"""Exporters deliver rendered bytes somewhere. They are plugins (``metricache_exporters``).

An exporter class names itself, declares its options as an attrs class, and
implements :meth:`Exporter.deliver`. The built-in ``file`` and ``stdout`` exporters
live in :mod:`metricache.builtin.exporters` and load through the same entry points as
any other plugin.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from metricache.snapshot import ViewKind

__all__ = ["ExportReport", "ExportRequest", "Exporter"]


@attrs.frozen
class ExportRequest:
    """What is being exported: which format to which exporter, of which view."""

    format: str
    exporter: str
    view: ViewKind
    snapshot_timestamp: float
    instance: str | None = None
    strategy: str | None = None


@attrs.frozen
class ExportReport:
    """What an exporter delivered: where, how many bytes, how long it took."""

    destination: str
    size: int
    duration: float


class Exporter:
    """Base class of an exporter plugin.

    ``name`` is what users pass (``--exporter file``); ``options_class`` is an attrs
    class of the options it accepts (``--option key=value`` on the command line).
    """

    name: ClassVar[str] = ""
    options_class: ClassVar[type] = object

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.options_class()

    def deliver(self, payload: bytes, request: ExportRequest, extension: str) -> str:
        """Deliver ``payload``; return a description of where it went.

        ``extension`` is the format's usual file extension (``txt``, ``json`` ...).
        Raise on failure; the caller logs, counts and (maybe) retries.
        """
        raise NotImplementedError
