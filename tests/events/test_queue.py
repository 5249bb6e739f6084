"""The bounded priority queue: what it sheds when full, and in which order it hands out."""

from __future__ import annotations

import threading

import pytest
from metricache.events import Priority, PriorityQueue, PutResult

LOW, NORMAL, HIGH, CRITICAL = Priority.LOW, Priority.NORMAL, Priority.HIGH, Priority.CRITICAL


def drain(queue: PriorityQueue[str]) -> list[str]:
    taken = []
    while len(queue):
        got = queue.get(timeout=0)
        assert got is not None
        taken.append(got[0])
        queue.task_done()
    return taken


def test_highest_priority_first_oldest_first_within_one() -> None:
    queue: PriorityQueue[str] = PriorityQueue(10)
    for item, priority in [
        ("l1", LOW),
        ("n1", NORMAL),
        ("c1", CRITICAL),
        ("l2", LOW),
        ("h1", HIGH),
    ]:
        assert queue.put(item, priority) == PutResult(True)
    assert drain(queue) == ["c1", "h1", "n1", "l1", "l2"]
    assert queue.get(timeout=0) is None


def test_a_full_queue_sheds_low_before_normal_before_high() -> None:
    queue: PriorityQueue[str] = PriorityQueue(4)
    queue.put("l1", LOW)
    queue.put("l2", LOW)
    queue.put("n1", NORMAL)
    queue.put("n2", NORMAL)
    # Full: a new low has nothing below it and is shed itself.
    assert queue.put("l3", LOW) == PutResult(False, (LOW,))
    # A high displaces the newest low, then the other low, then the newest normal.
    assert queue.put("h1", HIGH) == PutResult(True, (LOW,))
    assert queue.put("h2", HIGH) == PutResult(True, (LOW,))
    assert queue.put("h3", HIGH) == PutResult(True, (NORMAL,))
    # A normal cannot displace its equals or betters.
    assert queue.put("n3", NORMAL) == PutResult(False, (NORMAL,))
    assert drain(queue) == ["h1", "h2", "h3", "n1"]


def test_critical_displaces_lower_ones_and_waits_among_equals() -> None:
    queue: PriorityQueue[str] = PriorityQueue(2, critical_wait=0.01)
    queue.put("h1", HIGH)
    queue.put("c1", CRITICAL)
    assert queue.put("c2", CRITICAL) == PutResult(True, (HIGH,))
    # Full of critical items and nobody takes any: refused after the short wait.
    assert queue.put("c3", CRITICAL) == PutResult(False, (CRITICAL,))
    assert drain(queue) == ["c1", "c2"]


def test_a_waiting_critical_item_gets_the_room_a_consumer_makes() -> None:
    queue: PriorityQueue[str] = PriorityQueue(1, critical_wait=30.0)
    queue.put("c1", CRITICAL)
    result: list[PutResult] = []
    putter = threading.Thread(target=lambda: result.append(queue.put("c2", CRITICAL)))
    putter.start()
    got = queue.get(timeout=30)
    assert got == ("c1", CRITICAL)
    putter.join(30)
    assert result == [PutResult(True)]
    assert queue.get(timeout=30) == ("c2", CRITICAL)


def test_join_waits_for_every_item_handled_and_close_returns_the_rest() -> None:
    queue: PriorityQueue[str] = PriorityQueue(5)
    queue.put("a", NORMAL)
    queue.put("b", LOW)
    assert queue.join(timeout=0) is False
    got = queue.get()
    assert got == ("a", NORMAL)
    queue.task_done()
    assert queue.join(timeout=0) is False
    assert queue.close() == [("b", LOW)]
    assert queue.join(timeout=0) is True
    assert queue.get() is None
    assert queue.put("c", CRITICAL) == PutResult(False, (CRITICAL,))


def test_invalid_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="capacity must be at least 1"):
        PriorityQueue(0)
    with pytest.raises(ValueError, match="critical_wait must be >= 0"):
        PriorityQueue(1, critical_wait=-1)
