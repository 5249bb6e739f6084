"""The pure arithmetic of TTL-safe scheduling: latest start, lateness, extensions, backoff."""

from __future__ import annotations

import pytest
from metricache.export.schedule import (
    Timing,
    backoff_delay,
    late_by,
    late_extension,
    latest_start,
    period_of,
    period_start,
    retry_extension,
)


def test_defaults_are_the_documented_ones() -> None:
    timing = Timing()
    assert (timing.retention, timing.safety_margin, timing.export_timeout) == (300, 60, 120)
    assert (timing.backoff_base, timing.backoff_cap, timing.retries) == (30, 600, 3)
    assert timing.window == 120  # 300 - 60 - 120
    assert timing.period == 120  # no interval given: the longest safe one
    assert timing.lease == 120  # no lease_ttl given: the export timeout


@pytest.mark.parametrize(
    ("reference", "now", "latest", "late"),
    [
        (1000.0, 1000.0, 1120.0, 0.0),  # just exported: two minutes to go
        (1000.0, 1119.0, 1120.0, 0.0),  # on time, one second to spare
        (1000.0, 1120.0, 1120.0, 0.0),  # exactly at the latest start: not late
        (1000.0, 1150.0, 1120.0, 30.0),  # half a minute late
        (1000.0, 1300.0, 1120.0, 180.0),  # the data itself has expired by now
    ],
)
def test_latest_start_is_reference_plus_retention_minus_margin_minus_timeout(
    reference: float, now: float, latest: float, late: float
) -> None:
    timing = Timing()
    assert latest_start(reference, timing) == latest
    assert late_by(now, reference, timing) == late


def test_a_late_export_extends_by_the_overdue_time_plus_the_margin() -> None:
    timing = Timing()
    assert late_extension(30.0, timing) == 90.0
    assert late_extension(0.5, Timing(safety_margin=10, retention=200)) == 10.5
    with pytest.raises(ValueError, match="only a late export"):
        late_extension(0.0, timing)


def test_backoff_doubles_from_30_seconds_and_is_capped_at_10_minutes() -> None:
    timing = Timing()
    delays = [backoff_delay(n, timing) for n in range(1, 9)]
    assert delays == [30, 60, 120, 240, 480, 600, 600, 600]
    # A long run of failures neither overflows nor exceeds the cap.
    assert backoff_delay(10_000, timing) == 600
    custom = Timing(backoff_base=1.5, backoff_cap=5.0)
    assert [backoff_delay(n, custom) for n in (1, 2, 3, 4)] == [1.5, 3.0, 5.0, 5.0]
    with pytest.raises(ValueError, match="1 or more"):
        backoff_delay(0, timing)


def test_a_failed_attempt_extends_by_the_delay_plus_the_margin() -> None:
    timing = Timing()
    assert [retry_extension(backoff_delay(n, timing), timing) for n in (1, 2, 3)] == [
        90,
        120,
        180,
    ]


def test_periods_are_aligned_on_the_clock() -> None:
    timing = Timing(interval=60)
    assert period_of(0.0, timing) == 0
    assert period_of(59.999, timing) == 0
    assert period_of(60.0, timing) == 1
    assert period_of(-0.5, timing) == -1
    assert period_start(3, timing) == 180.0
    assert period_of(1_700_000_030.0, timing) == 28_333_333


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"retention": 150}, r"retention \(150 s\) must be longer than safety_margin"),
        ({"retention": 180}, r"retention \(180 s\) must be longer"),
        ({"interval": 121}, r"interval \(121 s\) is longer than retention - safety_margin"),
        ({"backoff_cap": 10}, r"backoff_cap \(10 s\) must be at least backoff_base \(30 s\)"),
        ({"safety_margin": 0}, "safety_margin must be a finite number of seconds > 0"),
        ({"export_timeout": float("inf")}, "export_timeout must be a finite number"),
        ({"retries": -1}, "retries must be a whole number >= 0"),
        ({"lease_ttl": -2.0}, "lease_ttl must be a finite number"),
    ],
)
def test_inconsistent_timings_are_refused_with_the_reason(
    settings: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Timing(**settings)  # type: ignore[arg-type]


def test_the_interval_may_equal_the_window() -> None:
    assert Timing(interval=120).period == 120
    assert Timing(retention=2, safety_margin=0.2, export_timeout=0.3, interval=1.5).period == 1.5
