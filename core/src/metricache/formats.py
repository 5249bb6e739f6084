"""Formats turn a snapshot into bytes. They are plugins (the ``metricache_formats`` hook).

:func:`render` renders a snapshot with the format of a given name; :func:`negotiate`
picks a format for an HTTP ``Accept`` header.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from metricache.errors import FormatNotFound
from metricache.snapshot import Snapshot

__all__ = ["Format", "available_formats", "content_type", "get_format", "negotiate", "render"]

DEFAULT_FORMAT = "prometheus"


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


def get_format(name: str) -> Format:
    """Return the format called ``name`` or raise :class:`FormatNotFound`."""
    formats = available_formats()
    try:
        return formats[name]
    except KeyError:
        known = ", ".join(sorted(formats)) or "none (is a format plugin installed?)"
        raise FormatNotFound(f"unknown format {name!r}; available: {known}") from None


def render(snapshot: Snapshot, format_name: str = DEFAULT_FORMAT) -> bytes:
    """Render ``snapshot`` with the format plugin called ``format_name``."""
    return get_format(format_name).render(snapshot)


def content_type(format_name: str = DEFAULT_FORMAT) -> str:
    """Return the content type of the format called ``format_name``."""
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


def negotiate(accept: str | None, default: str = DEFAULT_FORMAT) -> Format | None:
    """Return the best format for an ``Accept`` header, or None if none is acceptable.

    A missing or empty header, or ``*/*``, gives ``default``. Media-type parameters
    other than ``q`` are ignored.
    """
    formats = available_formats()
    if not accept or not accept.strip():
        return formats.get(default)
    for wanted in _parse_accept(accept):
        if wanted.media_type == "*/*":
            return formats.get(default)
        major, _, minor = wanted.media_type.partition("/")
        candidates = [formats[default]] if default in formats else []
        candidates += [f for n, f in sorted(formats.items()) if n != default]
        for fmt in candidates:
            for media in fmt.media_types:
                f_major, _, f_minor = media.partition("/")
                if f_major == major and (minor in ("*", f_minor)):
                    return fmt
    return None
