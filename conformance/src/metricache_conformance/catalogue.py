"""Every check of the suite, in the order they run, with the capability each proves.

This is the one place that says which check belongs to which capability (as
SQLAlchemy's ``requirements.py`` is for its suite): a check of a capability the
store does not declare ends as a named skip, or as an unexpected success.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs
from metricache.store import Capability

from metricache_conformance.context import Context

__all__ = ["Check", "all_checks", "check_named"]

CheckFunction = Callable[[Context], None]


@attrs.frozen
class Check:
    """One check: a name (``area.behaviour``), the capability it proves, the code.

    ``capability`` None means every store must pass it. ``needs_backdoor`` checks
    run only when backdoor helpers are given (from a store's own pytest class).
    """

    name: str
    capability: Capability | None
    function: CheckFunction = attrs.field(repr=False)
    needs_backdoor: bool = False

    @property
    def summary(self) -> str:
        """The first line of the check function's docstring."""
        doc = (self.function.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else self.name


def all_checks() -> list[Check]:
    """Return every check, in the order the suite runs them.

    The contract checks come last: they read the verdicts of the others.
    """
    from metricache_conformance.checks import (
        atomic,
        basics,
        cas,
        contract,
        distributed,
        exactly_once,
        hostile,
        locking,
        series,
    )

    return [
        *basics.CHECKS,
        *hostile.CHECKS,
        *atomic.CHECKS,
        *distributed.CHECKS,
        *cas.CHECKS,
        *locking.CHECKS,
        *series.CHECKS,
        *exactly_once.CHECKS,
        *contract.CHECKS,
    ]


def check_named(name: str) -> Check:
    """Return the check called ``name``; KeyError lists the known names."""
    for check in all_checks():
        if check.name == name:
            return check
    known = ", ".join(c.name for c in all_checks())
    raise KeyError(f"no check named {name!r}; the checks are: {known}")
