"""A bounded queue that sheds by priority, for backends that can be slow.

Items wait in one FIFO per priority; :meth:`PriorityQueue.get` takes the oldest
item of the highest priority waiting. When the queue is full, :meth:`put`:

* takes the place of the newest item of the lowest priority below its own (that
  item is shed), so low is shed before normal before high;
* is shed itself when nothing below it is waiting;
* except a critical item, which is never shed silently: it displaces a lower one
  when there is one, else waits up to ``critical_wait`` seconds for room, and only
  then is refused. The caller counts and logs every shed item
  (:class:`PutResult` says which).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

import attrs

from metricache.events.mapping import Priority

__all__ = ["PriorityQueue", "PutResult"]

T = TypeVar("T")

_LEVELS = tuple(Priority)  # low .. critical


@attrs.frozen
class PutResult:
    """What :meth:`PriorityQueue.put` did.

    ``accepted``: the item is queued. ``shed``: the priorities of the items dropped
    to make this decision — the displaced item, or the offered item itself when it
    was refused.
    """

    accepted: bool
    shed: tuple[Priority, ...] = ()


_ACCEPTED = PutResult(True)


class PriorityQueue(Generic[T]):
    """A thread-safe queue of at most ``capacity`` items that sheds low priorities first."""

    def __init__(self, capacity: int, *, critical_wait: float = 0.1) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if critical_wait < 0:
            raise ValueError("critical_wait must be >= 0 seconds")
        self.capacity = capacity
        self.critical_wait = critical_wait
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._all_done = threading.Condition(self._lock)
        self._levels: tuple[deque[T], ...] = tuple(deque() for _ in _LEVELS)
        self._size = 0
        self._unfinished = 0  # queued or being handled
        self._getters = 0  # threads waiting in get(): only then does put() notify
        self._closed = False

    def __len__(self) -> int:
        return self._size

    def put(self, item: T, priority: Priority) -> PutResult:
        """Queue ``item``, shedding by priority when full (see the module docstring)."""
        rank = priority.rank
        lock = self._lock
        lock.acquire()
        try:
            if self._size < self.capacity and not self._closed:
                # The common case, _append unrolled: it runs for every traced event.
                self._levels[rank].append(item)
                self._size += 1
                self._unfinished += 1
                if self._size == 1 and self._getters:
                    self._not_empty.notify()
                return _ACCEPTED
            return self._put_full(item, priority, rank)
        finally:
            lock.release()

    def _put_full(self, item: T, priority: Priority, rank: int) -> PutResult:
        """:meth:`put` on a full (or closed) queue; the lock is held."""
        if self._closed:
            return PutResult(False, (priority,))
        for lower in range(rank):
            victims = self._levels[lower]
            if victims:
                # One out, one in: size and unfinished count stay as they are.
                victims.pop()
                self._levels[rank].append(item)
                return PutResult(True, (_LEVELS[lower],))
        if priority is Priority.CRITICAL and self.critical_wait > 0:
            deadline = time.monotonic() + self.critical_wait
            while self._size >= self.capacity and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._not_full.wait(remaining)
            if self._size < self.capacity and not self._closed:
                self._append(item, rank)
                return _ACCEPTED
        return PutResult(False, (priority,))

    def _append(self, item: T, rank: int) -> None:
        self._levels[rank].append(item)
        self._size += 1
        self._unfinished += 1
        # Getters wait only on an empty queue, so only the first item wakes one (and a
        # getter that leaves items behind wakes the next): no notify per item.
        if self._size == 1 and self._getters:
            self._not_empty.notify()

    def get(self, timeout: float | None = None) -> tuple[T, Priority] | None:
        """Take the oldest item of the highest priority; None after ``timeout`` or close.

        Call :meth:`task_done` when the item has been handled.
        """
        with self._lock:
            if not self._wait(timeout):
                return None
            for rank in range(len(_LEVELS) - 1, -1, -1):
                level = self._levels[rank]
                if level:
                    item = level.popleft()
                    self._taken(1)
                    return item, _LEVELS[rank]
        raise AssertionError("unreachable: size > 0 with every level empty")

    def get_many(self, most: int, timeout: float | None = None) -> list[T]:
        """Take up to ``most`` items, highest priority first, oldest first within one.

        Waits for the first item like :meth:`get`; returns ``[]`` after ``timeout`` or
        close. Call :meth:`task_done` (with their number) when they have been handled.
        A batch costs one lock, however many items it holds.
        """
        with self._lock:
            if not self._wait(timeout):
                return []
            taken: list[T] = []
            for rank in range(len(_LEVELS) - 1, -1, -1):
                level = self._levels[rank]
                room = most - len(taken)
                if len(level) <= room:
                    taken.extend(level)
                    level.clear()
                else:
                    taken.extend(level.popleft() for _ in range(room))
                    break
            self._taken(len(taken))
            return taken

    def _wait(self, timeout: float | None) -> bool:
        """Wait (holding the lock) until an item is queued; False after timeout or close."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._size == 0:
            if self._closed:
                return False
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._getters += 1
            try:
                self._not_empty.wait(remaining)
            finally:
                self._getters -= 1
        return True

    def _taken(self, count: int) -> None:
        self._size -= count
        self._not_full.notify(count)
        if self._size and self._getters:
            self._not_empty.notify()  # items left: the next waiting getter takes them

    def task_done(self, count: int = 1) -> None:
        """Say that ``count`` items taken with :meth:`get` or :meth:`get_many` were handled."""
        with self._lock:
            self._unfinished -= count
            if self._unfinished <= 0:
                self._all_done.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued item has been handled; return whether that happened."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._unfinished > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._all_done.wait(remaining)
            return True

    def close(self) -> list[tuple[T, Priority]]:
        """Refuse new items, wake every waiter, and return what was still queued."""
        with self._lock:
            self._closed = True
            left = [
                (item, _LEVELS[rank])
                for rank in range(len(_LEVELS) - 1, -1, -1)
                for item in self._levels[rank]
            ]
            for level in self._levels:
                level.clear()
            self._unfinished -= self._size
            self._size = 0
            self._not_empty.notify_all()
            self._not_full.notify_all()
            self._all_done.notify_all()
            return left
