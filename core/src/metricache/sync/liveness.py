"""Keeping what an instance holds alive in the store: when to refresh each series.

A series lives in the store while any live instance holds it: every holder pushes
its expiry back (a *refresh*) at most once per :data:`REFRESH_FRACTION` of the
retention window, batched with its syncs. The instance that stops holding it (it
died, stopped, or removed the series) stops refreshing, and the series leaves the
store ``retention`` after the last refresh of its last holder.

:class:`RefreshQueue` orders the held series by when their refresh falls due, so a
sync finds the due ones without looking at the others: its cost follows the series
due, not the series held. A series enters the queue when the store confirms a write
that created or joined it, and again after each confirmed refresh.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from metricache.sync.series import SeriesState

__all__ = ["REFRESH_FRACTION", "RefreshQueue"]

REFRESH_FRACTION = 1 / 3
"""A holder refreshes a series once per this fraction of the retention window."""


class RefreshQueue:
    """The series an instance holds, in the order their refresh falls due.

    ``period`` is the seconds between two refreshes of one series. Entries are
    ``(due, state)``; a state rescheduled later leaves its old entry behind, which is
    recognised (its ``refresh_due`` moved on) and skipped.
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self._queue: deque[tuple[float, SeriesState]] = deque()

    def __len__(self) -> int:
        return len(self._queue)

    def schedule(self, state: SeriesState, refreshed: float) -> None:
        """Record that the store pushed back ``state``'s expiry at ``refreshed``.

        ``refreshed`` is when the request that did it was sent (the store applied it
        no earlier), on the syncer's monotonic clock.
        """
        due = refreshed + self.period
        state.refresh_due = due
        queue = self._queue
        if queue and queue[-1][0] > due:
            # Out of order (a refresh confirmed late): keep the queue sorted.
            items = sorted([*queue, (due, state)], key=_due)
            queue.clear()
            queue.extend(items)
        else:
            queue.append((due, state))

    def take_due(
        self, now: float, limit: int, holds: Callable[[SeriesState], bool]
    ) -> list[SeriesState]:
        """Remove and return up to ``limit`` series due at ``now`` that are still held.

        ``holds`` tells whether the instance still holds a series; those it does not
        are dropped (they expire from the store in their own time).
        """
        queue = self._queue
        found: list[SeriesState] = []
        while queue and len(found) < limit:
            due, state = queue[0]
            if due > now:
                break
            queue.popleft()
            if state.refresh_due != due or not holds(state):
                continue
            state.refresh_due = 0.0
            found.append(state)
        return found

    def put_back(self, states: list[SeriesState]) -> None:
        """Return series taken by :meth:`take_due` whose refresh was not confirmed."""
        for state in reversed(states):
            if state.refresh_due == 0.0:
                state.refresh_due = float("-inf")
                self._queue.appendleft((state.refresh_due, state))

    def expedite(self, only: Callable[[SeriesState], bool] | None = None) -> None:
        """Make every series held due now (the store may have lost them: check all).

        ``only`` limits this to the series it is true of (those of a part of the
        store that lost its data).
        """
        states = [state for due, state in self._queue if state.refresh_due == due]
        urgent = [s for s in states if only is None or only(s)]
        if not urgent:
            return
        chosen = set(map(id, urgent))
        self._queue.clear()
        for state in urgent:
            state.refresh_due = float("-inf")
            self._queue.append((state.refresh_due, state))
        for state in states:
            if id(state) not in chosen:
                self._queue.append((state.refresh_due, state))


def _due(item: tuple[float, SeriesState]) -> float:
    return item[0]
