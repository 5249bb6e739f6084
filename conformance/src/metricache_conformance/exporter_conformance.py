"""``ExporterConformance``: the exporter kit as a pytest base class, for an exporter's tests.

For metricache's own exporters the kit knows a destination::

    from metricache_conformance import ExporterConformance

    class TestFileExporter(ExporterConformance):
        exporter = "file"

Any other exporter says where it delivers, with ``make_destination``: a
:class:`~metricache_conformance.destinations.Destination` giving the options of a
live destination (and reading back what arrived), of one that is down, of one that
never answers, and the secret that must never show. For an exporter that sends
HTTP, :class:`~metricache_conformance.destinations.HttpDestination` does all that
with a local receiver::

    class TestPushgatewayExporter(ExporterConformance):
        exporter = "pushgateway"

        def make_destination(self) -> Destination:
            return HttpDestination({"job": "conformance"}, token_option=None)

Each check is one test, ``test_exporter_conformance[exporter.delivers]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest

from metricache_conformance.destinations import Destination, builtin_destination
from metricache_conformance.exporter_suite import EXPORTER_CHECKS, ExporterSuite
from metricache_conformance.pytest_plugin import verdict

__all__ = ["EXPORTER_CHECK_NAMES", "ExporterConformance", "open_exporter_suite"]

EXPORTER_CHECK_NAMES = [check.name for check in EXPORTER_CHECKS]
"""The checks, in the order they run; each is one parameter of ``test_exporter_conformance``."""


class ExporterConformance:
    """Base class of a pytest class that runs the exporter kit against an exporter.

    ``exporter`` names it (its name, or ``package.module:Class``); ``make_destination``
    says where it delivers (the kit's own for ``file``, ``stdout`` and ``http``).
    """

    exporter: ClassVar[str] = ""

    def make_destination(self) -> Destination:
        """Return the destination the exporter delivers to (closed after the class)."""
        found = builtin_destination(self.exporter)
        if found is None:
            raise NotImplementedError(
                f"{type(self).__name__}: define make_destination() for the exporter "
                f"{self.exporter!r} (the kit knows destinations of file, stdout and http only)"
            )
        return found

    @pytest.mark.parametrize("check", EXPORTER_CHECK_NAMES)
    def test_exporter_conformance(self, exporter_suite: ExporterSuite, check: str) -> None:
        """Run one check of the exporter kit."""
        verdict(check, exporter_suite.run(check))


def open_exporter_suite(request: pytest.FixtureRequest) -> Iterator[ExporterSuite]:
    """Open the kit on the exporter and destination of the class requesting it."""
    cls = request.cls
    if cls is None or not issubclass(cls, ExporterConformance):
        pytest.fail("the 'exporter_suite' fixture is for subclasses of ExporterConformance", False)
    if not cls.exporter:
        pytest.fail(f"{cls.__name__}: set `exporter = ...` to the exporter's name", False)
    with cls().make_destination() as destination:
        yield ExporterSuite(cls.exporter, destination)
