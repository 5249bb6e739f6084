"""Events: what an application publishes, and what event handlers turn into metrics."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Event"]


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
