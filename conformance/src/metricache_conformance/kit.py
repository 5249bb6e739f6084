"""What the format and exporter kits share: a check, running it, and a report of a run.

A kit check is a function of the kit's context that returns quietly when the promise
holds, raises :class:`~metricache_conformance.checking.CheckFailed` with a sentence
naming the broken promise when it does not, and :class:`NotApplicable` when the
promise does not apply (a destination that cannot be down, no parse-back hook).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Generic, TypeVar

import attrs

from metricache_conformance.checking import CheckFailed
from metricache_conformance.results import Findings, Outcome, Result

__all__ = ["KitCheck", "KitReport", "KitSuite", "NotApplicable", "check_named", "run_kit_check"]

C = TypeVar("C")


class NotApplicable(Exception):
    """The promise a check proves does not apply here; the message says why."""


@attrs.frozen
class KitCheck(Generic[C]):
    """One check of a kit: a name (``format.bytes``) and the code."""

    name: str
    function: Callable[[C], None] = attrs.field(repr=False)

    @property
    def summary(self) -> str:
        """The first line of the check function's docstring."""
        doc = (self.function.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else self.name


def check_named(checks: Sequence[KitCheck[C]], name: str) -> KitCheck[C]:
    """Return the check called ``name``; KeyError lists the known names."""
    for check in checks:
        if check.name == name:
            return check
    known = ", ".join(c.name for c in checks)
    raise KeyError(f"no check named {name!r}; the checks are: {known}")


def run_kit_check(check: KitCheck[C], context: C) -> Result:
    """Run ``check`` on ``context`` and return its result (it never raises)."""
    started = time.perf_counter()
    outcome, message = Outcome.PASSED, ""
    try:
        check.function(context)
    except CheckFailed as exc:
        outcome, message = Outcome.FAILED, str(exc)
    except NotApplicable as exc:
        outcome, message = Outcome.SKIPPED, str(exc)
    except Exception as exc:
        outcome, message = Outcome.FAILED, f"raised {type(exc).__name__}: {exc}"
    return Result(check.name, None, outcome, time.perf_counter() - started, message)


@attrs.frozen
class KitReport(Findings):
    """What one kit found for one plugin: ``kind`` is ``format`` or ``exporter``.

    ``problem`` says why the kit could not run (a failure); ``skipped`` why it was
    not run (no destination known for an exporter: not a failure).
    """

    kind: str
    name: str
    results: tuple[Result, ...]
    problem: str | None = None
    skipped: str | None = None

    def summary(self) -> str:
        """One line counting the results: ``format json: 5 passed, 0 failed, 0 skipped``."""
        label = f"{self.kind} {self.name}"
        if self.problem is not None:
            return f"{label}: not run: {self.problem}"
        if self.skipped is not None:
            return f"{label}: skipped: {self.skipped}"
        return f"{label}: {self.counts()}"


class KitSuite:
    """What a kit's runner shares: run one check by name, run them all, report.

    A subclass sets ``kind`` and ``checks`` (checks of the subclass's own type) and
    has a ``name``.
    """

    kind: ClassVar[str] = ""
    checks: ClassVar[Sequence[KitCheck[Any]]] = ()
    results: list[Result]

    @property
    def name(self) -> str:
        """The name of the plugin under test."""
        raise NotImplementedError

    def run(self, name: str) -> Result:
        """Run the check called ``name`` and return its result."""
        result = run_kit_check(check_named(self.checks, name), self)
        self.results.append(result)
        return result

    def run_all(self, on_result: Callable[[Result], None] | None = None) -> KitReport:
        """Run every check in order; call ``on_result`` after each."""
        for check in self.checks:
            result = self.run(check.name)
            if on_result is not None:
                on_result(result)
        return self.report()

    def report(self) -> KitReport:
        """What the checks run so far found."""
        return KitReport(self.kind, self.name, tuple(self.results))
