"""Running the suite against one store: checks in order, results, the matrix row."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from metricache.errors import UnsupportedOperation
from metricache.store import Capability, Store
from metricache.sync.strategy import Strategy, select_strategy

from metricache_conformance.catalogue import Check, all_checks, check_named
from metricache_conformance.checking import CheckFailed
from metricache_conformance.context import Backdoor, Context, Scale
from metricache_conformance.results import Outcome, Report, Result
from metricache_conformance.target import StoreTarget, label_of

__all__ = ["NO_BACKDOOR", "Conformance"]

NO_BACKDOOR = (
    "no backdoor helpers given (define backdoor_get and backdoor_set in a StoreConformance class)"
)


class Conformance:
    """The conformance suite, run against the store ``target`` opens.

    ``open()`` opens the store and reads what it declares (a store that declares
    nothing is asked through detectors and a probe, as the core does); ``run(name)``
    runs one check; ``run_all()`` runs every check and returns the :class:`Report`.
    A check that needs backdoor helpers ends as a named skip without them.
    ``on_progress`` is called with the check's name and a line to show while a long
    check runs (what it is doing).
    """

    def __init__(
        self,
        target: StoreTarget,
        *,
        scale: Scale | None = None,
        backdoor: Backdoor | None = None,
        checks: Sequence[Check] | None = None,
        on_progress: Callable[[str, str], None] | None = None,
    ) -> None:
        self.target = target
        self.on_progress = on_progress
        self.scale = scale or Scale()
        self.backdoor = backdoor
        self.checks = list(checks) if checks is not None else all_checks()
        self.results: list[Result] = []
        self._store: Store | None = None
        self.declared: frozenset[Capability] = frozenset()
        self.declaration_source = ""
        self.selected: Strategy | None = None
        self.store_name = target.plugin
        self.description = target.plugin

    @property
    def store(self) -> Store:
        """The client the checks use (opened by :meth:`open`)."""
        if self._store is None:
            raise RuntimeError("call open() first")
        return self._store

    def open(self) -> Conformance:
        """Open the store, check that it answers, and read what it declares.

        Raises what opening raises (ConfigError for bad options, StoreError when the
        store cannot be reached).
        """
        store = self.target.open()
        try:
            store.ping()
            twin = self.target.open()
            try:
                choice = select_strategy(store, twin=twin)
            finally:
                twin.close()
        except BaseException:
            store.close()
            raise
        self._store = store
        self.store_name = label_of(store.name or self.target.plugin, self.target.variant)
        self.description = store.describe()
        self.declared = choice.capabilities
        self.declaration_source = choice.source
        self.selected = choice.strategy
        return self

    def close(self) -> None:
        """Close the store."""
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Conformance:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, name: str) -> Result:
        """Run the check called ``name`` and return its result."""
        return self.run_check(check_named(name))

    def run_check(self, check: Check) -> Result:
        """Run ``check`` and record its result."""
        if check.needs_backdoor and self.backdoor is None:
            result = Result(check.name, check.capability, Outcome.SKIPPED, 0.0, NO_BACKDOOR)
            self.results.append(result)
            return result
        context = Context(
            self.target,
            self.store,
            self.declared,
            scale=self.scale,
            backdoor=self.backdoor,
            results=lambda: tuple(self.results),
            progress=self._progress_of(check),
        )
        started = time.perf_counter()
        error: str | None = None
        try:
            check.function(context)
        except CheckFailed as exc:
            error = str(exc)
        except UnsupportedOperation as exc:
            error = f"an operation is not supported: {exc}"
        except Exception as exc:
            error = f"raised {type(exc).__name__}: {exc}"
        finally:
            context.close()
        duration = time.perf_counter() - started
        result = self._result(check, error, duration)
        self.results.append(result)
        return result

    def _progress_of(self, check: Check) -> Callable[[str], None] | None:
        on_progress = self.on_progress
        if on_progress is None:
            return None
        return lambda line: on_progress(check.name, line)

    def _result(self, check: Check, error: str | None, duration: float) -> Result:
        capability = check.capability
        if capability is None:
            outcome = Outcome.PASSED if error is None else Outcome.FAILED
            return Result(check.name, None, outcome, duration, error or "")
        declared = capability in self.declared
        if declared and error is None:
            return Result(check.name, capability, Outcome.PASSED, duration)
        if declared:
            # A capability found by a detector or the live probe is claimed, not declared.
            verb = "declares" if self.declaration_source == "declared" else "claims"
            message = f"{verb} '{capability.value}', but {error}"
            return Result(check.name, capability, Outcome.FAILED, duration, message)
        if error is None:
            message = f"not declared: {capability.value}, yet the check passes"
            return Result(check.name, capability, Outcome.UNEXPECTED_SUCCESS, duration, message)
        message = f"not declared: {capability.value}"
        return Result(check.name, capability, Outcome.SKIPPED, duration, message, error)

    def run_all(self, on_result: Callable[[Result], None] | None = None) -> Report:
        """Run every check in order; call ``on_result`` after each."""
        for check in self.checks:
            result = self.run_check(check)
            if on_result is not None:
                on_result(result)
        return self.report()

    def report(self) -> Report:
        """Return what the checks run so far found."""
        return Report(
            store=self.store_name,
            plugin=self.target.plugin,
            description=self.description,
            declared=self.declared,
            declaration_source=self.declaration_source,
            results=tuple(self.results),
            selected=self.selected,
        )
