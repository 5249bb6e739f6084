"""Events: what an application publishes, and what event handlers turn into metrics."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Event", "make_event"]


def _frozen_payload(payload: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(payload or {})


@attrs.frozen
class Event:
    """A named occurrence (``task.completed``) with a payload of plain values.

    The router builds one for every event it keeps, after sampling: whatever
    receives an Event (a metrics handler, a tracer, the log) never samples again.
    """

    name: str
    payload: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_payload)
    timestamp: float = attrs.field(factory=time.time)


_new = object.__new__
_now = time.time
# The slots' own setters: the frozen class refuses setattr, its slots do not.
_set_name = Event.__dict__["name"].__set__
_set_payload = Event.__dict__["payload"].__set__
_set_timestamp = Event.__dict__["timestamp"].__set__


def make_event(name: str, payload: Mapping[str, Any] | None) -> Event:
    """Return ``Event(name, payload)``, built without the generated ``__init__``.

    The router builds one per kept event; this costs a fraction of the attrs
    constructor (its converter and frozen-attribute checks), with the same result:
    the payload copied into a new dict, the time of the call as the timestamp.
    """
    event: Event = _new(Event)
    _set_name(event, name)
    _set_payload(event, dict(payload) if payload else {})
    _set_timestamp(event, _now())
    return event
