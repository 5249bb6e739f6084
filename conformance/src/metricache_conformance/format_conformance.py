"""``FormatConformance``: the format kit as a pytest base class, for a format package's tests.

In about three lines::

    from metricache_conformance import FormatConformance

    class TestMyFormat(FormatConformance):
        format = "my-format"  # the format's name, or "my_package.module:MyFormat"

Each check is one test, ``test_format_conformance[format.bytes]``: it passes, fails
with a message naming the broken promise, or is skipped with its reason. A format
that can be read back defines ``parse_back``, which turns its bytes into the
:class:`~metricache_conformance.snapshot_catalogue.FlatSample` objects they hold;
the kit then checks that every sample of every hostile snapshot reads back exactly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import pytest

from metricache_conformance.format_suite import FORMAT_CHECKS, FormatSuite
from metricache_conformance.pytest_plugin import verdict
from metricache_conformance.snapshot_catalogue import FlatSample

__all__ = ["FORMAT_CHECK_NAMES", "FormatConformance"]

FORMAT_CHECK_NAMES = [check.name for check in FORMAT_CHECKS]
"""The checks, in the order they run; each is one parameter of ``test_format_conformance``."""


class FormatConformance:
    """Base class of a pytest class that runs the format kit against a format.

    ``format`` names it (its name, or ``package.module:Class``); ``parse_back`` is
    optional.
    """

    format: ClassVar[str] = ""

    def parse_back(self, payload: bytes) -> Iterable[FlatSample]:
        """Read ``payload`` back as the samples it holds (optional)."""
        raise NotImplementedError

    def suite(self) -> FormatSuite:
        """The kit on this class's format, with its parse-back hook when it has one."""
        if not self.format:
            pytest.fail(f"{type(self).__name__}: set `format = ...` to the format's name", False)
        given = type(self).parse_back is not FormatConformance.parse_back
        return FormatSuite(self.format, parse_back=self.parse_back if given else None)

    @pytest.mark.parametrize("check", FORMAT_CHECK_NAMES)
    def test_format_conformance(self, check: str) -> None:
        """Run one check of the format kit."""
        verdict(check, self.suite().run(check))
