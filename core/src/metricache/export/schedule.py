"""The arithmetic of TTL-safe export scheduling: pure functions of times and settings.

Everything the store holds lives ``retention`` seconds after it was last written.
An export that starts at ``S`` and reads the store covers everything written before
``S``; what is written afterwards lives at least until ``S + retention``. So the
next export must *start* by

    latest start = reference + retention - safety_margin - export_timeout

where ``reference`` is when the previous export read the store: it then has
``export_timeout`` seconds to finish, and ``safety_margin`` seconds remain before
the oldest series it must cover expires.

A store can only set a TTL, not add to one; metricache's TTL extension gives every
covered key ``retention + extra`` seconds from now (never less than it had). That
makes the data as safe as if it had been written ``extra`` seconds from now, so an
extension moves the reference to ``now + extra``.

Times here are plain floats on whatever clock the caller uses; nothing reads a clock.
"""

from __future__ import annotations

import math

import attrs

__all__ = [
    "Timing",
    "backoff_delay",
    "late_by",
    "late_extension",
    "latest_start",
    "period_of",
    "period_start",
    "retry_extension",
]


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be a finite number of seconds > 0, got {value!r}")


def _optional_positive(
    instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{attribute.name} must be a finite number of seconds > 0, got {value!r}")


def _not_negative(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{attribute.name} must be a whole number >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class Timing:
    """When exports happen, how late they may be, and how failures are retried.

    ``retention`` is the store's (``sync.retention``). ``interval`` is the export
    period (default: the longest safe one, ``retention - safety_margin -
    export_timeout``); it may not be longer than that. ``retries`` failed attempts
    are retried after ``backoff_base``, doubling each time, at most ``backoff_cap``
    seconds apart; then the period is given up. ``lease_ttl`` is how long a lease
    outlives its holder's last renewal (default: ``export_timeout``), which bounds
    how long a dead holder delays the next export.
    """

    retention: float = attrs.field(default=300.0, validator=_positive)
    safety_margin: float = attrs.field(default=60.0, validator=_positive)
    export_timeout: float = attrs.field(default=120.0, validator=_positive)
    interval: float | None = attrs.field(default=None, validator=_optional_positive)
    backoff_base: float = attrs.field(default=30.0, validator=_positive)
    backoff_cap: float = attrs.field(default=600.0, validator=_positive)
    retries: int = attrs.field(default=3, validator=_not_negative)
    lease_ttl: float | None = attrs.field(default=None, validator=_optional_positive)

    def __attrs_post_init__(self) -> None:
        if self.window <= 0:
            raise ValueError(
                f"retention ({self.retention:g} s) must be longer than safety_margin "
                f"({self.safety_margin:g} s) plus export_timeout ({self.export_timeout:g} s): "
                "otherwise data could expire before its export finishes"
            )
        if self.interval is not None and self.interval > self.window:
            raise ValueError(
                f"the export interval ({self.interval:g} s) is longer than retention - "
                f"safety_margin - export_timeout ({self.window:g} s): series could expire "
                "between two exports"
            )
        if self.backoff_cap < self.backoff_base:
            raise ValueError(
                f"backoff_cap ({self.backoff_cap:g} s) must be at least backoff_base "
                f"({self.backoff_base:g} s)"
            )

    @property
    def window(self) -> float:
        """``retention - safety_margin - export_timeout``: the longest safe gap between exports."""
        return self.retention - self.safety_margin - self.export_timeout

    @property
    def period(self) -> float:
        """The export period in seconds (``interval``, else :attr:`window`)."""
        return self.interval if self.interval is not None else self.window

    @property
    def lease(self) -> float:
        """The lease TTL in seconds (``lease_ttl``, else ``export_timeout``)."""
        return self.lease_ttl if self.lease_ttl is not None else self.export_timeout


def latest_start(reference: float, timing: Timing) -> float:
    """Return the latest moment the next export may start without risking expiry.

    ``reference`` is when the previous export read the store (or when the data was
    last made safe by a TTL extension).
    """
    return reference + timing.window


def late_by(now: float, reference: float, timing: Timing) -> float:
    """Return how many seconds past its latest start an export starting at ``now`` is (>= 0)."""
    return max(0.0, now - latest_start(reference, timing))


def late_extension(lateness: float, timing: Timing) -> float:
    """Return the TTL extension for an export that is ``lateness`` seconds late.

    The overdue time plus the safety margin: the data then lives at least
    ``retention + lateness + safety_margin`` seconds from now.
    """
    if lateness <= 0:
        raise ValueError("only a late export needs an extension")
    return lateness + timing.safety_margin


def backoff_delay(failures: int, timing: Timing) -> float:
    """Return the wait before the retry that follows the ``failures``-th failed attempt.

    ``backoff_base`` after the first failure, doubling after each further one, never
    more than ``backoff_cap``: 30, 60, 120, 240, 480, 600, 600 ... by default.
    """
    if failures < 1:
        raise ValueError("failures counts failed attempts: 1 or more")
    # The exponent is bounded so that a long run of failures never overflows a float.
    return min(timing.backoff_base * 2.0 ** min(failures - 1, 64), timing.backoff_cap)


def retry_extension(delay: float, timing: Timing) -> float:
    """Return the TTL extension given after a failed attempt retried ``delay`` seconds later.

    The delay plus the safety margin: when the retry starts, every key it covers
    still has more than its full retention left.
    """
    return delay + timing.safety_margin


def period_of(now: float, timing: Timing) -> int:
    """Return the number of the export period ``now`` falls in.

    Periods are aligned to multiples of the interval on the clock (the Unix epoch for
    wall time), so every instance numbers them alike without talking to the others.
    """
    return math.floor(now / timing.period)


def period_start(period: int, timing: Timing) -> float:
    """Return the moment period number ``period`` starts."""
    return period * timing.period
