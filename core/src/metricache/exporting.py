"""One export: render a snapshot once, hand the bytes to every exporter, isolate failures.

:func:`export_snapshot` is what ``metricache export`` and the export coordinator
call. Data flows one way: the format sees only the snapshot, each exporter only the
bytes and its :class:`~metricache.exporters.ExportRequest`.

One failing exporter never stops the others: its error is logged, counted in
``metricache_export_failures_total{exporter}`` and reported to the
``metricache_export_failed`` hook, and the next exporter runs. A lifecycle hook that
raises is logged and ignored, and the other plugins' hooks are still called:
observers never break an export.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import attrs

from metricache.exporters import Exporter, ExportReport, ExportRequest
from metricache.formats import get_format
from metricache.metrics import Counter
from metricache.plugins import call_each
from metricache.registry import REGISTRY, Registry
from metricache.snapshot import Snapshot

__all__ = ["ExportFailure", "ExportOutcome", "export_snapshot", "failures_counter"]

log = logging.getLogger("metricache.export")


@attrs.frozen
class ExportFailure:
    """One exporter's failed delivery: its request and the error it raised."""

    request: ExportRequest
    error: BaseException


@attrs.frozen
class ExportOutcome:
    """What one export achieved: the deliveries that completed and those that failed."""

    completed: tuple[tuple[ExportRequest, ExportReport], ...]
    failed: tuple[ExportFailure, ...]

    @property
    def ok(self) -> bool:
        """Whether every exporter delivered."""
        return not self.failed


def failures_counter(registry: Registry) -> Counter:
    """Return the counter of failed deliveries in ``registry`` (created once)."""
    counter: Counter = registry.self_metric(
        "export_failures",
        lambda reg: Counter(
            "metricache_export_failures",
            "Exporter deliveries that failed, by exporter",
            ["exporter"],
            registry=reg,
        ),
    )
    return counter


def _notify(hook_name: str, **kwargs: object) -> None:
    def failed(plugin: str, exc: BaseException) -> None:
        log.error(
            "a %s hook raised (plugin %r); the export goes on", hook_name, plugin, exc_info=exc
        )

    call_each(hook_name, kwargs, failed)


def export_snapshot(
    snapshot: Snapshot,
    format_name: str,
    exporters: Sequence[Exporter],
    *,
    attempt: int = 1,
    will_retry: bool = False,
    registry: Registry = REGISTRY,
) -> ExportOutcome:
    """Render ``snapshot`` with the format ``format_name`` and deliver it to each exporter.

    The snapshot is rendered once, after ``metricache_export_requested`` was called
    for every exporter. Each delivery then ends in ``metricache_export_completed`` or
    ``metricache_export_failed`` (with ``attempt`` and ``will_retry`` as given: the
    caller decides about retries). A render error fails every delivery. Failures are
    counted in ``registry``; nothing an exporter or a hook raises escapes, except
    :class:`~metricache.errors.FormatNotFound` for an unknown format, raised before
    anything starts.
    """
    fmt = get_format(format_name)
    requests = [
        ExportRequest(
            format=fmt.name,
            exporter=exporter.name,
            view=snapshot.view,
            snapshot_timestamp=snapshot.timestamp,
            instance=snapshot.instance,
            strategy=snapshot.strategy,
            content_type=fmt.content_type,
            extension=fmt.extension,
        )
        for exporter in exporters
    ]
    for request in requests:
        _notify("metricache_export_requested", request=request)

    completed: list[tuple[ExportRequest, ExportReport]] = []
    failed: list[ExportFailure] = []

    def fail(request: ExportRequest, error: BaseException) -> None:
        failed.append(ExportFailure(request, error))
        failures_counter(registry).labels(request.exporter).inc()
        _notify(
            "metricache_export_failed",
            request=request,
            error=error,
            attempt=attempt,
            will_retry=will_retry,
        )

    try:
        payload = fmt.render(snapshot)
    except Exception as exc:
        log.exception("the %s format failed to render the snapshot", fmt.name)
        for request in requests:
            fail(request, exc)
        return ExportOutcome(tuple(completed), tuple(failed))

    for exporter, request in zip(exporters, requests):
        started = time.perf_counter()
        try:
            destination = exporter.deliver(payload, request)
        except Exception as exc:
            log.warning(
                "exporter %s failed to deliver the %s export (attempt %d): %s: %s",
                exporter.name,
                fmt.name,
                attempt,
                type(exc).__name__,
                exc,
            )
            fail(request, exc)
            continue
        report = ExportReport(
            destination=destination,
            size=len(payload),
            duration=time.perf_counter() - started,
        )
        completed.append((request, report))
        log.info("exported %d bytes of %s to %s", report.size, fmt.name, destination)
        _notify("metricache_export_completed", request=request, report=report)
    return ExportOutcome(tuple(completed), tuple(failed))
