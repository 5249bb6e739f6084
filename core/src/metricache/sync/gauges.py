"""An instance's gauges as the store holds them: pages of entries, changed one at a time.

Gauges are per instance. An instance's *header* (``NS:g:IKEY``) names it and its page
layout and lives for the liveness TTL, refreshed by every sync: it is the instance's
liveness marker, and a reader merges the gauges of the instances whose header is
there. The entries (series id -> ``[value, stamp]``) are spread over *pages* by
series id; a sync sends only the entries that changed (a store with maps it can edit,
Redis, sets and deletes fields; another store rewrites the pages that changed).

A page holds up to the store's ``gauge_page_size`` entries; when an instance holds
more, the layout doubles its page count under a new layout token and every page is
written anew (pages of the old layout expire on their own). Pages outlive the header
(their TTL is the larger of the retention window and the liveness TTL) and are
refreshed like series, once per fraction of the retention window.

:class:`GaugeBook` keeps the entries this instance wants the store to hold and the
changes the store has not confirmed yet.
"""

from __future__ import annotations

import secrets

from metricache.sync.batch import GaugeUpdate, page_of

__all__ = ["GaugeBook"]


class GaugeBook:
    """This instance's gauge entries, their pages, and what the store has not confirmed."""

    def __init__(self, page_size: int | None) -> None:
        self.page_size = page_size
        self.entries: dict[str, str] = {}
        self._pages: list[dict[str, str]] = [{}]
        self._layout = ""
        self._changes: dict[int, dict[str, str | None]] = {}
        self.full = True  # the store holds none of it yet
        self.touch_due = 0.0
        self._new_layout(1)

    @property
    def layout(self) -> str:
        """The page layout: ``TOKEN.COUNT``."""
        return self._layout

    def _new_layout(self, count: int) -> None:
        self._layout = f"{secrets.token_hex(4)}.{count}"
        self._pages = [{} for _ in range(count)]
        for sid, entry in self.entries.items():
            self._pages[page_of(sid, count)][sid] = entry
        self._changes = {}
        self.full = True

    def put(self, sid: str, entry: str) -> None:
        """Set the entry of a gauge series."""
        self.entries[sid] = entry
        pages = self._pages
        if self.page_size is not None and len(self.entries) > len(pages) * self.page_size:
            self._new_layout(len(pages) * 2)
            return
        n = page_of(sid, len(pages))
        pages[n][sid] = entry
        if not self.full:
            self._changes.setdefault(n, {})[sid] = entry

    def remove(self, sid: str) -> None:
        """Delete the entry of a gauge series (it was removed, or no longer collected)."""
        if self.entries.pop(sid, None) is None:
            return
        n = page_of(sid, len(self._pages))
        self._pages[n].pop(sid, None)
        if not self.full:
            self._changes.setdefault(n, {})[sid] = None

    def update(self, now: float) -> GaugeUpdate:
        """Return what the last batch of a sync carries (at least the layout, to check).

        ``now`` is the syncer's monotonic time; the pages are touched when due.
        """
        count = len(self._pages)
        touch = now >= self.touch_due
        if self.full:
            return GaugeUpdate(
                self._layout, count, full=True, contents=dict(enumerate(self._pages))
            )
        return GaugeUpdate(
            self._layout,
            count,
            changes=self._changes,
            contents={n: self._pages[n] for n in self._changes},
            touch=touch,
        )

    def confirm(self, update: GaugeUpdate, sent: float, period: float) -> None:
        """Record that the store applied ``update`` (sent at ``sent``)."""
        if update.layout != self._layout:
            return  # a new layout was started meanwhile: it is still to be written whole
        if update.full:
            self.full = False
        self._changes = {}
        if update.full or update.touch:
            self.touch_due = sent + period

    def lost(self) -> None:
        """The store lost this instance's header: write every page again."""
        self._changes = {}
        self.full = True
