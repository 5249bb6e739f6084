"""A lifecycle plugin that records every export hook call, registered in-process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from metricache import hookimpl
from metricache.exporters import ExportReport, ExportRequest
from metricache.plugins import get_plugin_manager

__all__ = ["HookRecorder", "recording"]


class HookRecorder:
    """Records ``(hook, exporter, detail)`` for each export lifecycle call."""

    def __init__(self, raise_in: str = "") -> None:
        self.calls: list[tuple[str, str, object]] = []
        self.raise_in = raise_in

    def _record(self, hook: str, exporter: str, detail: object) -> None:
        self.calls.append((hook, exporter, detail))
        if hook == self.raise_in:
            raise RuntimeError(f"a broken {hook} observer")

    @hookimpl
    def metricache_export_requested(self, request: ExportRequest) -> None:
        self._record("requested", request.exporter, request.format)

    @hookimpl
    def metricache_export_completed(self, request: ExportRequest, report: ExportReport) -> None:
        self._record("completed", request.exporter, report.size)

    @hookimpl
    def metricache_export_failed(
        self, request: ExportRequest, error: BaseException, attempt: int, will_retry: bool
    ) -> None:
        self._record("failed", request.exporter, (type(error).__name__, attempt, will_retry))


@contextmanager
def recording(raise_in: str = "") -> Iterator[HookRecorder]:
    """Register a recorder on the plugin manager for the duration of the block."""
    recorder = HookRecorder(raise_in)
    manager = get_plugin_manager()
    manager.register(recorder, name="test-export-recorder")
    try:
        yield recorder
    finally:
        manager.unregister(recorder)
