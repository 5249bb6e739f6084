"""Exporters deliver rendered bytes somewhere. They are plugins (``metricache_exporters``).

An exporter class names itself, declares its options as an attrs class, and
implements :meth:`Exporter.deliver`. It sees only the bytes a format rendered and the
:class:`ExportRequest` describing them, never live metrics or a store. The built-in
``file``, ``stdout`` and ``http`` exporters live in :mod:`metricache.builtin.exporters`
and load through the same entry points as any other plugin.

:func:`open_exporter` finds an exporter by name and builds it from options (TOML
values, or text from ``--exporter-option key=value``);
:func:`metricache.exporting.export_snapshot` renders a snapshot once and hands the
bytes to several exporters.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import attrs

from metricache.config import parse_options
from metricache.errors import ConfigError
from metricache.snapshot import ViewKind

__all__ = ["ExportReport", "ExportRequest", "Exporter", "available_exporters", "open_exporter"]


@attrs.frozen
class ExportRequest:
    """What is being exported: which format to which exporter, of which view.

    ``content_type`` and ``extension`` are the format's (``application/json``,
    ``json``), so that an exporter can label or name the bytes without knowing the
    format. ``snapshot_timestamp`` is the Unix time of the exported snapshot.
    """

    format: str
    exporter: str
    view: ViewKind
    snapshot_timestamp: float
    instance: str | None = None
    strategy: str | None = None
    content_type: str = "application/octet-stream"
    extension: str = "txt"


@attrs.frozen
class ExportReport:
    """What an exporter delivered: where, how many bytes, how long it took (seconds)."""

    destination: str
    size: int
    duration: float


class Exporter:
    """Base class of an exporter plugin.

    ``name`` is what users pass (``--exporter file``); ``options_class`` is an attrs
    class of the options it accepts (``--exporter-option key=value`` on the command
    line, ``[export] options`` in the configuration file). An exporter is built once
    and may deliver many times.
    """

    name: ClassVar[str] = ""
    options_class: ClassVar[type] = object

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.options_class()

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        """Deliver ``payload``; return a description of where it went.

        Raise on failure; the caller logs, counts and (maybe) retries. The description
        is shown to users and logged, so it must not contain secrets.
        """
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<exporter {self.name}>"


def available_exporters() -> dict[str, type[Exporter]]:
    """Return every exporter class the installed plugins offer, by name."""
    from metricache.plugins import exporter_classes

    return exporter_classes()


def open_exporter(
    name: str,
    options: Mapping[str, object] | None = None,
    *,
    where: str = "export.options",
) -> Exporter:
    """Build the exporter plugin called ``name`` with ``options``.

    Text option values are converted to the types the exporter declares. An unknown
    exporter, an unknown option or an invalid value raises
    :class:`~metricache.errors.ConfigError`, each problem prefixed by ``where``.
    """
    cls = available_exporters().get(name)
    if cls is None:
        from metricache.plugins import missing

        raise ConfigError([missing("metricache_exporters", name)])
    parsed: object = parse_options(cls.options_class, dict(options or {}), where=where)
    return cls(parsed)
