"""Choosing a sync strategy from what a store can do.

==================  =====================================================  ======================
strategy            needs                                                  what it promises
==================  =====================================================  ======================
distributed_atomic  distributed, atomic, locking                           merged view; one
                                                                           exporter per period
distributed_basic   distributed, atomic                                    merged view; export
                                                                           coordination best effort
local_only          anything else                                          each instance's own view
==================  =====================================================  ======================

Capabilities come from the store's declaration; a store class that declares none
(``capabilities = None``) is asked about through the ``metricache_detect_capabilities``
hook, then probed live. A store that fails its probe degrades to ``local_only`` with
one logged warning; detection never raises into the application. What detection
finds is kept per store object: a store is probed at most once, never on every read.
"""

from __future__ import annotations

import enum
import logging
import secrets
import threading
import weakref
from collections.abc import Iterable
from typing import cast

import attrs

from metricache.store import Capability, Store

__all__ = ["Strategy", "StrategyChoice", "probe_capabilities", "select_strategy", "strategy_for"]

log = logging.getLogger("metricache.sync")


class Strategy(str, enum.Enum):
    """How metrics from several instances combine in a store."""

    DISTRIBUTED_ATOMIC = "distributed_atomic"
    DISTRIBUTED_BASIC = "distributed_basic"
    LOCAL_ONLY = "local_only"


@attrs.frozen
class StrategyChoice:
    """The strategy chosen for a store, the capabilities it rests on and their source.

    ``source`` is ``declared``, ``detector:<plugin>``, ``probe``, or ``fallback``
    (the store could not be used; ``problem`` says why).
    """

    strategy: Strategy
    capabilities: frozenset[Capability]
    source: str
    problem: str | None = None


def strategy_for(capabilities: Iterable[Capability]) -> Strategy:
    """Return the strategy the compatibility matrix gives these capabilities."""
    caps = set(capabilities)
    if Capability.DISTRIBUTED in caps and Capability.ATOMIC in caps:
        if Capability.LOCKING in caps:
            return Strategy.DISTRIBUTED_ATOMIC
        return Strategy.DISTRIBUTED_BASIC
    return Strategy.LOCAL_ONLY


def _declared(store: Store) -> frozenset[Capability] | None:
    declared = type(store).capabilities
    if declared is None:
        return None
    return frozenset(Capability(c) for c in declared)


def _from_detectors(store: Store) -> tuple[frozenset[Capability], str] | None:
    from metricache.plugins import get_plugin_manager

    pm = get_plugin_manager()
    for impl in reversed(pm.hook.metricache_detect_capabilities.get_hookimpls()):
        answer = cast("Iterable[Capability] | None", impl.function(store=store))
        if answer is not None:
            return frozenset(Capability(c) for c in answer), f"detector:{impl.plugin_name}"
    return None


def _concurrent_increments_exact(store: Store, key: bytes) -> bool:
    store.incr(key, 0, 30)  # raises at once when incr is not supported
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(200):
                store.incr(key, 1, 30)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return not errors and store.incr(key, 0, 30) == 800


def probe_capabilities(store: Store, *, twin: Store | None = None) -> frozenset[Capability]:
    """Find capabilities by trying them, on a key that is removed afterwards.

    Basics must work (else the probe raises). ``atomic`` needs exact totals from
    concurrent ``incr`` calls; ``cas`` and ``locking`` need their primitives to
    answer as specified. ``distributed`` needs ``twin`` (a second client opened with
    the same options) to see a write of the first.
    """
    key = b"metricache:probe:" + secrets.token_hex(6).encode()
    caps: set[Capability] = set()
    store.set(key, b"v1", 30)
    if store.get(key) != b"v1" or not store.touch(key, 30):
        raise RuntimeError("get/set/touch do not round-trip")
    try:
        if twin is not None and twin.get(key) == b"v1":
            caps.add(Capability.DISTRIBUTED)
        counter = key + b":n"
        try:
            if _concurrent_increments_exact(store, counter):
                caps.add(Capability.ATOMIC)
        except Exception:
            log.debug("probe: incr unsupported", exc_info=True)
        finally:
            store.delete(counter)
        lock = key + b":l"
        try:
            if (
                store.add(lock, b"a", 30)
                and not store.add(lock, b"b", 30)
                and not store.compare_and_swap(lock, b"x", b"c", 30)
                and store.compare_and_swap(lock, b"a", b"c", 30)
            ):
                caps.add(Capability.CAS)
            if (
                not store.compare_and_delete(lock, b"wrong")
                and store.compare_and_touch(lock, b"c", 30)
                and store.compare_and_delete(lock, b"c")
                and store.get(lock) is None
            ):
                caps.add(Capability.LOCKING)
        except Exception:
            log.debug("probe: cas/locking unsupported", exc_info=True)
        finally:
            store.delete(lock)
    finally:
        store.delete(key)
    return frozenset(caps)


_detected: weakref.WeakKeyDictionary[Store, StrategyChoice] = weakref.WeakKeyDictionary()
_detecting = threading.Lock()


def select_strategy(store: Store, *, twin: Store | None = None) -> StrategyChoice:
    """Decide the strategy for ``store``: declared, then detectors, then a live probe.

    Never raises: a detector or probe failure yields ``local_only`` and one warning.
    A store that declares nothing is asked (or probed) once; the answer is kept for
    the life of the store object (``twin`` asks again: it is a deliberate probe).
    """
    declared = _declared(store)
    if declared is not None:
        return StrategyChoice(strategy_for(declared), declared, "declared")
    if twin is not None:
        return _detect(store, twin)
    with _detecting:
        found = _detected.get(store)
        if found is None:
            found = _detected[store] = _detect(store, None)
        return found


def _detect(store: Store, twin: Store | None) -> StrategyChoice:
    """Ask the detectors, then probe; see :func:`select_strategy`."""
    try:
        detected = _from_detectors(store)
    except Exception as exc:
        problem = f"a capability detector failed: {type(exc).__name__}: {exc}"
        log.warning("store %s: %s; using local_only", store.describe(), problem)
        return StrategyChoice(Strategy.LOCAL_ONLY, frozenset(), "fallback", problem)
    if detected is not None:
        caps, source = detected
        return StrategyChoice(strategy_for(caps), caps, source)
    try:
        caps = probe_capabilities(store, twin=twin)
    except Exception as exc:
        problem = f"the store failed its probe: {type(exc).__name__}: {exc}"
        log.warning("store %s: %s; using local_only", store.describe(), problem)
        return StrategyChoice(Strategy.LOCAL_ONLY, frozenset(), "fallback", problem)
    return StrategyChoice(strategy_for(caps), caps, "probe")
