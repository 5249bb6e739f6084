"""What the suite found: one result per check, and the store's row of the matrix.

A check of a capability the store declares passes or fails. A check of one it does
not declare still runs when it can: if it fails, that is the expected answer and it
is reported as a named skip (``not declared: locking``); if it passes, it is
reported as an *unexpected success*, for information (the store may be able to
promise more than it does).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

import attrs
from metricache.store import Capability
from metricache.sync.strategy import Strategy, strategy_for

__all__ = [
    "CAPABILITY_COLUMNS",
    "STRATEGY_CHECK",
    "CapabilityStatus",
    "Findings",
    "MatrixRow",
    "Outcome",
    "Report",
    "Result",
    "capability_status",
    "count",
    "kept_capabilities",
]

CAPABILITY_COLUMNS: tuple[Capability, ...] = (
    Capability.DISTRIBUTED,
    Capability.ATOMIC,
    Capability.CAS,
    Capability.LOCKING,
    Capability.EXACTLY_ONCE,
)
"""The capabilities of the matrix, in the order of its columns."""

STRATEGY_CHECK = "contract.strategy"
"""The check whose verdict the strategy column shows (not the basics column)."""


class Outcome(str, enum.Enum):
    """How one check ended."""

    PASSED = "passed"
    FAILED = "failed"
    SKIPPED = "skipped"
    UNEXPECTED_SUCCESS = "unexpected success"


@attrs.frozen
class Result:
    """The result of one check.

    ``capability`` is the capability the check proves (None: every store must pass
    it). ``message`` says what went wrong for a failure, why for a skip; ``detail``
    keeps what the check of an undeclared capability ran into.
    """

    check: str
    capability: Capability | None
    outcome: Outcome
    duration: float
    message: str = ""
    detail: str = ""


class CapabilityStatus(str, enum.Enum):
    """One cell of the matrix."""

    VERIFIED = "verified"  # declared, and every check of it passed
    FAILED = "failed"  # declared, and a check of it failed
    NOT_DECLARED = "not declared"  # not declared (its checks fail, or could not run)
    UNEXPECTED = "unexpected success"  # not declared, yet every check of it passed
    NOT_RUN = "not run"  # none of its checks ran

    @property
    def holds(self) -> bool:
        """Whether the store keeps this promise (as declared and checked)."""
        return self is CapabilityStatus.VERIFIED


def capability_status(
    capability: Capability, declared: bool, results: Iterable[Result]
) -> CapabilityStatus:
    """Fold the results of one capability's checks into its cell of the matrix."""
    outcomes = [r.outcome for r in results if r.capability is capability]
    if not outcomes:
        return CapabilityStatus.NOT_RUN
    if declared:
        if any(o is Outcome.FAILED for o in outcomes):
            return CapabilityStatus.FAILED
        return CapabilityStatus.VERIFIED
    if all(o is Outcome.UNEXPECTED_SUCCESS for o in outcomes):
        return CapabilityStatus.UNEXPECTED
    return CapabilityStatus.NOT_DECLARED


def kept_capabilities(
    declared: frozenset[Capability], results: Sequence[Result]
) -> list[Capability]:
    """Return the capabilities the store keeps as far as ``results`` show.

    That is the declared ones whose checks all passed, and the declared ones none of
    whose checks ran (``--check`` chose others): the strategy rests on them.
    """
    kept = []
    for capability in CAPABILITY_COLUMNS:
        status = capability_status(capability, capability in declared, results)
        if status.holds or (status is CapabilityStatus.NOT_RUN and capability in declared):
            kept.append(capability)
    return kept


@attrs.frozen
class MatrixRow:
    """A store's row of the compatibility matrix.

    ``basics`` says whether every check every store must pass did pass (None: none of
    them ran); the check that the core selects the row's strategy is not one of them,
    its verdict is ``strategy_ok``. ``strategy`` is what the verified capabilities
    give (:func:`metricache.sync.strategy.strategy_for`), or None when the checks of
    some capability did not run (``--check`` chose others): a strategy is reported
    only for capabilities that were checked. ``selected`` is what the core selects
    for the store, which must be the same.
    """

    store: str
    basics: bool | None
    cells: tuple[tuple[Capability, CapabilityStatus], ...]
    strategy: Strategy | None
    selected: Strategy | None
    strategy_ok: bool | None = None

    def status(self, capability: Capability) -> CapabilityStatus:
        """Return the cell of ``capability``."""
        return dict(self.cells)[capability]


class Findings:
    """What a report of checks knows: its ``results`` and a ``problem`` that stopped it."""

    results: tuple[Result, ...]
    problem: str | None

    @property
    def failures(self) -> list[Result]:
        """The checks that failed."""
        return [r for r in self.results if r.outcome is Outcome.FAILED]

    @property
    def ok(self) -> bool:
        """Whether every promise is kept (and the checks could run)."""
        return self.problem is None and not self.failures

    def counts(self) -> str:
        """``5 passed, 0 failed, 1 skipped`` (and unexpected successes, when any)."""
        found = self.results
        parts = [
            f"{count(found, Outcome.PASSED)} passed",
            f"{count(found, Outcome.FAILED)} failed",
            f"{count(found, Outcome.SKIPPED)} skipped",
        ]
        unexpected = count(found, Outcome.UNEXPECTED_SUCCESS)
        if unexpected:
            parts.append(f"{unexpected} unexpected success" + ("es" if unexpected > 1 else ""))
        return ", ".join(parts)


@attrs.frozen
class Report(Findings):
    """Everything one run of the suite against one store found.

    ``problem`` is set when the suite could not run at all (the store did not open
    or answer); ``results`` is then empty.
    """

    store: str
    plugin: str
    description: str
    declared: frozenset[Capability]
    declaration_source: str
    results: tuple[Result, ...]
    selected: Strategy | None
    problem: str | None = None

    def row(self) -> MatrixRow:
        """Return the store's row of the matrix."""
        cells = tuple(
            (c, capability_status(c, c in self.declared, self.results)) for c in CAPABILITY_COLUMNS
        )
        basics_ran = [
            r
            for r in self.results
            if r.capability is None
            and r.check != STRATEGY_CHECK
            and r.outcome is not Outcome.SKIPPED
        ]
        basics = None
        if self.problem is None and basics_ran:
            basics = all(r.outcome is not Outcome.FAILED for r in basics_ran)
        checked = all(status is not CapabilityStatus.NOT_RUN for _, status in cells)
        strategy = None
        if self.problem is None and checked:
            strategy = strategy_for(kept_capabilities(self.declared, self.results))
        verdicts = [r.outcome for r in self.results if r.check == STRATEGY_CHECK]
        return MatrixRow(
            store=self.store,
            basics=basics,
            cells=cells,
            strategy=strategy,
            selected=self.selected,
            strategy_ok=(verdicts[-1] is Outcome.PASSED) if verdicts else None,
        )


def count(results: Sequence[Result], outcome: Outcome) -> int:
    """Return how many results ended with ``outcome``."""
    return sum(1 for r in results if r.outcome is outcome)
