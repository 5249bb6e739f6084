"""Formats turn a snapshot into bytes. They are plugins (the ``metricache_formats`` hook).

:func:`render` renders a snapshot with the format of a given name; :func:`negotiate`
picks a format for an HTTP ``Accept`` header. Where no format is named, the default
is ``prometheus`` when it is installed, else the first installed format by name, so
that an environment with any one format plugin renders, serves and exports.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from metricache.errors import FormatNotFound
from metricache.snapshot import Snapshot

__all__ = [
    "DEFAULT_FORMAT",
    "Format",
    "available_formats",
    "content_type",
    "default_format",
    "get_format",
    "negotiate",
    "render",
]

DEFAULT_FORMAT = "prometheus"
"""The format used where none is named, when it is installed (see :func:`default_format`)."""


class Format:
    """Base class of a format plugin.

    ``name`` is what users pass (``--format prometheus``); ``content_type`` is sent
    with the bytes; ``media_types`` are the ``type/subtype`` values this format
    answers to in an ``Accept`` header; ``extension`` names exported files.
    """

    name: ClassVar[str] = ""
    content_type: ClassVar[str] = "application/octet-stream"
    media_types: ClassVar[tuple[str, ...]] = ()
    extension: ClassVar[str] = "txt"

    def render(self, snapshot: Snapshot) -> bytes:
        """Return the bytes of ``snapshot`` in this format."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<format {self.name} ({self.content_type})>"


def available_formats() -> dict[str, Format]:
    """Return every format the loaded plugins offer, by name."""
    from metricache.plugins import format_objects

    return format_objects()


def default_format() -> Format:
    """Return the format used where none is named.

    ``prometheus`` when installed, else the first installed format by name; raise
    :class:`FormatNotFound` naming the distribution to install when there is none.
    """
    formats = available_formats()
    if DEFAULT_FORMAT in formats:
        return formats[DEFAULT_FORMAT]
    if formats:
        return formats[min(formats)]
    raise FormatNotFound(
        "no format plugin is installed; install the distribution metricache-prometheus "
        "(pip install metricache-prometheus) or another format plugin"
    )


def get_format(name: str | None = None) -> Format:
    """Return the format called ``name`` (None or empty: :func:`default_format`).

    Raise :class:`FormatNotFound` when no plugin offers it (naming the distribution
    to install for metricache's own formats) or when two plugins offer it (naming both).
    """
    if not name:
        return default_format()
    found = available_formats().get(name)
    if found is None:
        from metricache.plugins import missing

        raise FormatNotFound(missing("metricache_formats", name))
    return found


def render(snapshot: Snapshot, format_name: str | None = None) -> bytes:
    """Render ``snapshot`` with the format plugin called ``format_name`` (default: prometheus)."""
    return get_format(format_name).render(snapshot)


def content_type(format_name: str | None = None) -> str:
    """Return the content type of the format called ``format_name`` (default: prometheus)."""
    return get_format(format_name).content_type


@attrs.frozen
class _Accepted:
    media_type: str
    q: float
    order: int


def _parse_accept(header: str) -> list[_Accepted]:
    accepted = []
    for order, part in enumerate(header.split(",")):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0].lower()
        if not media:
            continue
        if "/" not in media:
            media = f"{media}/*"
        q = 1.0
        for param in fields[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if q > 0:
            accepted.append(_Accepted(media, min(q, 1.0), order))
    accepted.sort(key=lambda a: (-a.q, a.order))
    return accepted


def negotiate(accept: str | None, default: str | None = None) -> Format | None:
    """Return the best format for an ``Accept`` header, or None if none is acceptable.

    A missing or empty header, or ``*/*``, gives ``default`` (when not installed, or
    None: :func:`default_format`). Media-type parameters other than ``q`` are ignored.
    When two formats answer to one media type, the default wins, then the first by name.
    """
    formats = available_formats()
    if not formats:
        return None
    chosen = formats[default] if default is not None and default in formats else default_format()
    if not accept or not accept.strip():
        return chosen
    for wanted in _parse_accept(accept):
        if wanted.media_type == "*/*":
            return chosen
        major, _, minor = wanted.media_type.partition("/")
        candidates = [chosen, *(f for _, f in sorted(formats.items()) if f is not chosen)]
        for fmt in candidates:
            for media in fmt.media_types:
                f_major, _, f_minor = media.partition("/")
                if f_major == major and (minor in ("*", f_minor)):
                    return fmt
    return None
