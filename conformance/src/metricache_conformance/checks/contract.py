"""The end-to-end contract: syncing instances produce what the strategy promises.

Two instances, each a real process with its own :class:`metricache.Syncer`, sync
the scenario of :mod:`metricache_conformance.scenario` to the store. On a
distributed strategy the merged view must hold their exact sums; on ``local_only``
each must read back its own view. And the strategy the core selects for the store
must be the one its row of the matrix gives.
"""

from __future__ import annotations

import gc
from typing import Any

from metricache.registry import Registry
from metricache.store import Store
from metricache.sync.reader import merged_snapshot
from metricache.sync.strategy import Strategy, select_strategy, strategy_for
from metricache.sync.syncer import Syncer

from metricache_conformance import scenario
from metricache_conformance.catalogue import Check
from metricache_conformance.checking import CheckFailed
from metricache_conformance.context import Context
from metricache_conformance.results import STRATEGY_CHECK, kept_capabilities

__all__ = ["CHECKS", "sync_instance"]

RETENTION = 120.0


def sync_instance(store: Store, args: dict[str, Any]) -> dict[str, Any]:
    """Be one instance of the scenario: record, sync, record, sync (a worker task).

    On ``local_only`` the instance also reads its own view back from the store.
    """
    role = args["role"]
    registry = Registry()
    metrics = scenario.make_metrics(registry)
    syncer = Syncer(
        registry,
        store,
        interval=3600.0,
        retention=RETENTION,
        liveness_ttl=RETENTION,
        namespace=args["namespace"],
        instance_id=scenario.instance_id(role),
        jitter=0.0,
    )
    errors = []
    for phase in range(len(scenario.PLAN[role])):
        scenario.record(metrics, role, phase)
        report = syncer.flush()
        if not report.ok:
            errors.append(f"sync {phase + 1} failed: {report.error}")
    strategy = syncer.strategy
    instance = syncer.instance.id
    # Dropped here so that no final sync runs at exit, after the store is closed.
    del syncer
    gc.collect()
    answer: dict[str, Any] = {"strategy": strategy.value, "errors": errors}
    if strategy is Strategy.LOCAL_ONLY:
        view = merged_snapshot(
            store,
            namespace=args["namespace"],
            retention=RETENTION,
            strategy=strategy,
            instance_id=instance,
        )
        answer["view"] = scenario.canonical(view)
    return answer


def end_to_end(ctx: Context) -> None:
    """Two instances (processes) syncing with metricache.Syncer give the promised view."""
    choice = select_strategy(ctx.store, twin=ctx.client())
    promised = choice.strategy
    answers = ctx.workers(
        "contract.sync_instance",
        [{"role": role, "namespace": ctx.namespace} for role in scenario.ROLES],
    )
    for role, answer in zip(scenario.ROLES, answers):
        if answer["errors"]:
            raise CheckFailed(f"instance {role} could not sync: {answer['errors'][0]}")
        if answer["strategy"] != promised.value:
            raise CheckFailed(
                f"instance {role} synced with the strategy {answer['strategy']}, but the core "
                f"selects {promised.value} for this store"
            )
    if promised is Strategy.LOCAL_ONLY:
        for role, answer in zip(scenario.ROLES, answers):
            problems = scenario.describe_differences(answer["view"], scenario.expected_own(role))
            if problems:
                raise CheckFailed(
                    f"local_only promises each instance its own view, but instance {role} "
                    f"read back: {problems}"
                )
        return
    view = scenario.canonical(
        merged_snapshot(ctx.store, namespace=ctx.namespace, retention=RETENTION, strategy=promised)
    )
    problems = scenario.describe_differences(view, scenario.expected_merged())
    if problems:
        raise CheckFailed(
            f"{promised.value} promises the two instances' exact sums and merged gauges, "
            f"but the merged view has: {problems}"
        )


def strategy_matches_row(ctx: Context) -> None:
    """The strategy the core selects equals the one the store's matrix row gives."""
    choice = select_strategy(ctx.store, twin=ctx.client())
    kept = kept_capabilities(ctx.declared, ctx.results())
    row = strategy_for(kept)
    if choice.strategy is not row:
        names = ", ".join(c.value for c in kept) or "none"
        declared = ", ".join(sorted(c.value for c in choice.capabilities)) or "none"
        raise CheckFailed(
            f"the core selects {choice.strategy.value} for this store ({choice.source} "
            f"capabilities: {declared}), but the capabilities the checks verified ({names}) "
            f"give {row.value}"
        )


CHECKS = [
    Check("contract.end_to_end", None, end_to_end),
    Check(STRATEGY_CHECK, None, strategy_matches_row),
]
