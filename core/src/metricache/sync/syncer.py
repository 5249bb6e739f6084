"""The syncer: a background thread that folds what changed into the store.

Semantics (the part that decides whether every number shown is true):

* The hot path never touches the store. Each series appends itself to its
  registry's change tracker the first time it changes after a sync; the syncer
  drains the tracker, so a sync costs in proportion to the series that changed.
* A sync sends **deltas since the last confirmed sync**: per series the syncer
  keeps the cumulative integers the store confirmed (``sent``) and sends
  ``current - sent``. Nothing is confirmed until the store says so; a failed sync
  leaves ``sent`` alone and the next one sends everything since. Memory does not
  grow while the store is down.
* Counters and histograms go to series shared by every instance; gauges go to this
  instance's own pages, which live while the instance syncs (the liveness TTL).
* A series lives while any live instance holds it: holders refresh it once per
  third of the retention window. Each instance remembers the *life* of the series
  its contributions went into; a series that expired (nobody held it) or that the
  store lost is a new life, into which every holder sends its whole contribution.
* A batch carries the store epoch it was computed against. A store that lost its
  data (flush, restart without persistence) has another epoch, or none, and
  applies nothing; the syncer then re-sends its cumulative totals, so the shared
  totals again equal the sum over live instances.
* On a store that declares ``exactly_once`` (Redis), a batch whose answer was lost
  is re-sent unchanged before anything else; every series it wrote carries a trace
  of it, so the store recognises what it applied however late the retry comes.
* A forked child is a new instance: what it inherited is its parent's to report
  (:mod:`metricache.sync.fork`).

The work is shared out: :mod:`~metricache.sync.shared` (the distributed strategies'
engine), :mod:`~metricache.sync.plan` (one batch), :mod:`~metricache.sync.liveness`
(refreshes), :mod:`~metricache.sync.gauges` (gauge pages),
:mod:`~metricache.sync.collected` (collectors' series), :mod:`~metricache.sync.local`
(``local_only``), :mod:`~metricache.sync.fork` and :mod:`metricache.background` (the
thread).
"""

from __future__ import annotations

import atexit
import itertools
import logging
import os
import random
import threading
import time
import weakref
from types import TracebackType

from metricache.background import BackgroundLoop
from metricache.collectors import install_collectors
from metricache.instance import Instance, current_instance
from metricache.metrics import Counter, Gauge, Histogram
from metricache.registry import REGISTRY, Registry
from metricache.snapshot import Snapshot
from metricache.store import Capability, Store
from metricache.sync import fork, local
from metricache.sync.batch import PartialApply
from metricache.sync.clock import SYSTEM_CLOCK, Clock
from metricache.sync.keyspace import Keyspace
from metricache.sync.liveness import REFRESH_FRACTION
from metricache.sync.report import SyncReport
from metricache.sync.shared import SharedSync
from metricache.sync.strategy import Strategy, StrategyChoice, select_strategy

__all__ = ["Syncer"]

log = logging.getLogger("metricache.sync")

_SERIALS = itertools.count(1)


class _SelfMetrics:
    """metricache's own metrics about syncing, kept in the synced registry."""

    def __init__(self, registry: Registry) -> None:
        self.duration = Histogram(
            "metricache_sync_duration_seconds",
            "Time taken by sync attempts",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.syncs = Counter(
            "metricache_syncs", "Sync attempts by result", ["result"], registry=registry
        )
        self.errors = Counter(
            "metricache_sync_errors",
            "Failed sync attempts by error type",
            ["error"],
            registry=registry,
        )
        self.series = Gauge(
            "metricache_sync_series",
            "Series whose changes the last successful sync sent",
            registry=registry,
            merge="per_instance",
        )
        self.pending = Gauge(
            "metricache_sync_pending_series",
            "Series with changes the store has not confirmed yet",
            registry=registry,
            merge="per_instance",
        )
        self.last_sync = Gauge(
            "metricache_last_sync_timestamp_seconds",
            "Unix time of the last successful sync",
            registry=registry,
            merge="per_instance",
        )
        self.resets = Counter(
            "metricache_store_resets",
            "Times the store was found to have lost its data (totals were re-sent)",
            registry=registry,
        )
        self.retries = Counter(
            "metricache_sync_batch_retries",
            "Batches re-sent after their outcome was unknown",
            registry=registry,
        )


def _self_metrics(registry: Registry) -> _SelfMetrics:
    found: _SelfMetrics = registry.self_metric("sync", _SelfMetrics)
    return found


class Syncer:
    """Sync a registry to a store in the background.

    ``interval`` is the seconds between syncs; ``retention`` is how long the store
    keeps a series after its last holder stopped refreshing it (holders refresh once
    per third of it, so keep ``interval`` well under two thirds of ``retention``);
    ``liveness_ttl`` is how long this instance's gauges outlive its last sync
    (default: three intervals, at least 5 s); ``local_state_ttl`` is how long a
    ``local_only`` store keeps this instance's saved view (default one day), so a
    restart with the same id within it resumes. ``strategy`` overrides the detected
    one (only to a weaker strategy). ``clock`` is where the syncer reads the time
    (tests pass a controllable one).

    Use it as a context manager, or call :meth:`start` and :meth:`stop`. It stops
    (with a final sync) at interpreter exit. Nothing it does raises into the
    application: failures are logged, counted and retried.
    """

    def __init__(
        self,
        registry: Registry = REGISTRY,
        store: Store | None = None,
        *,
        interval: float = 30.0,
        retention: float = 300.0,
        liveness_ttl: float | None = None,
        local_state_ttl: float = 86400.0,
        namespace: str = "metricache",
        instance_id: str | None = None,
        strategy: Strategy | str | None = None,
        jitter: float = 0.1,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not interval > 0:
            raise ValueError("interval must be > 0 seconds")
        if not retention > 0:
            raise ValueError("retention must be > 0 seconds")
        if store is None:
            from metricache.store_plugins import open_store

            store = open_store("memory")
        if instance_id is not None and not instance_id.strip():
            raise ValueError("an instance id must not be empty")
        if not local_state_ttl > 0:
            raise ValueError("local_state_ttl must be > 0 seconds")
        self._instance_id = instance_id
        self._serial = next(_SERIALS)
        self.registry = registry
        self.store = store
        self.interval = float(interval)
        self.liveness_ttl = float(liveness_ttl or max(3 * self.interval, 5.0))
        self.local_state_ttl = float(local_state_ttl)
        self.keyspace = Keyspace(namespace, float(retention))
        self.jitter = jitter
        self.clock = clock
        self.choice: StrategyChoice = select_strategy(store)
        if strategy is not None:
            wanted = Strategy(strategy)
            order = list(Strategy)
            if order.index(wanted) < order.index(self.choice.strategy):
                raise ValueError(
                    f"store {store.describe()} supports {self.choice.strategy.value}, "
                    f"not {wanted.value}"
                )
            self.choice = StrategyChoice(wanted, self.choice.capabilities, "configured")
        self._metrics = _self_metrics(registry)
        self._sync_lock = threading.Lock()
        self._loop = BackgroundLoop(
            "metricache-syncer",
            self._background_sync,
            first_delay=self._next_delay,
            final=self._sync_locked,
        )
        self._pid = os.getpid()
        self._pid_at_start = self._pid
        self.last_report: SyncReport | None = None
        self._failures = 0  # consecutive failed syncs
        self._syncs = 0
        self._local: local.LocalSync | None = None
        self._shared: SharedSync | None = None
        self._make_engine()
        fork.register_syncer(self)
        atexit.register(_stop_at_exit, weakref.ref(self))

    def _make_engine(self) -> None:
        if self.strategy is Strategy.LOCAL_ONLY:
            self._local = local.LocalSync(
                self.registry, self.store, self.keyspace, self.local_state_ttl
            )
            return
        self._shared = SharedSync(
            self.registry,
            self.store,
            self.keyspace,
            liveness_ttl=self.liveness_ttl,
            exactly_once=Capability.EXACTLY_ONCE in self.choice.capabilities,
            clock=self.clock,
            on_retry=self._metrics.retries.inc,
        )

    # -- public interface --------------------------------------------------------------

    @property
    def strategy(self) -> Strategy:
        """The strategy in use."""
        return self.choice.strategy

    @property
    def instance(self) -> Instance:
        """The instance this syncer writes as.

        Its id is the one given to the syncer, else the process's; its token is the
        process incarnation's plus a number of this syncer, so that two syncers of one
        process never take each other's batches for their own.
        """
        process = current_instance()
        instance_id = self._instance_id or process.id
        if self._instance_id and process.pid != self._pid_at_start:
            instance_id = f"{self._instance_id}-{process.pid}"
        return Instance(id=instance_id, token=f"{process.token}.{self._serial}", pid=process.pid)

    @property
    def running(self) -> bool:
        """Whether the background thread is running."""
        return self._loop.running

    def start(self) -> Syncer:
        """Start the background thread (a no-op if it runs already).

        The collectors plugins offer (``metricache_collectors``) are installed in the
        registry first, once.
        """
        self._check_fork()
        install_collectors(self.registry)
        if self.interval > self.keyspace.retention * (1 - REFRESH_FRACTION) / (1 + self.jitter):
            log.warning(
                "sync interval %.3g s is too long for a retention of %.3g s: series this "
                "instance holds may expire between two syncs (keep the interval under "
                "two thirds of the retention)",
                self.interval,
                self.keyspace.retention,
            )
        self._loop.start()
        return self

    def stop(self, timeout: float = 10.0) -> SyncReport | None:
        """Stop the thread after a final sync; wait at most ``timeout`` seconds.

        Returns the report of the final sync (None if it did not finish in time).
        """
        if self._loop.running and not self._loop.in_loop():
            if not self._loop.stop(timeout):
                log.warning("the syncer did not finish its final sync within %.1f s", timeout)
                return None
            return self.last_report
        self._loop.stop(timeout)
        return self.flush()

    def flush(self) -> SyncReport:
        """Sync now, in the calling thread; return the report (never raises store errors)."""
        self._check_fork()
        return self._sync_locked()

    def __enter__(self) -> Syncer:
        return self.start()

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def snapshot(self) -> Snapshot:
        """Return this instance's view as the store sees it after a sync.

        For ``local_only`` it includes what a previous run with the same instance id
        saved; otherwise it is the registry's own snapshot.
        """
        live = self.registry.snapshot(instance=self.instance.id, strategy=self.strategy.value)
        if self._local is not None:
            return local.combine(self._local.base(self.instance), live)
        return live

    # -- the thread --------------------------------------------------------------------

    def _next_delay(self) -> float:
        return self.interval * (1 + self.jitter * (2 * random.random() - 1))

    def _background_sync(self) -> float:
        self._sync_locked()
        return self._next_delay()

    def _sync_locked(self) -> SyncReport:
        with self._sync_lock:
            return self._sync_and_report()

    # -- fork ----------------------------------------------------------------------------

    def _check_fork(self) -> None:
        if self._pid != os.getpid():
            self._after_fork()

    def _after_fork(self) -> None:
        """Become a new instance in a forked child (see :mod:`metricache.sync.fork`)."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._sync_lock = threading.Lock()
        was_running = self._loop.after_fork()
        previous = self._shared
        self._make_engine()
        if previous is not None and self._shared is not None:
            # The epoch and the registrations are the store's, not the parent's.
            self._shared.epoch = previous.epoch
            self._shared.families_gen = previous.families_gen
        if self._local is not None:
            self._local.after_fork()
        try:
            self.store.after_fork()
        except Exception:
            log.warning(
                "store %s: reconnecting after fork failed", self.store.describe(), exc_info=True
            )
        if was_running:
            self._loop.start()

    # -- one sync ------------------------------------------------------------------------

    def _sync_and_report(self) -> SyncReport:
        started = time.time()
        t0 = time.perf_counter()
        series = 0
        error: str | None = None
        resent = False
        try:
            if self._local is not None:
                series = self._local.sync(self.instance, self.snapshot, self.clock.time())
            else:
                assert self._shared is not None
                series, resent = self._shared.sync(self.instance)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self._metrics.errors.labels(type(exc).__name__).inc()
            if isinstance(exc, PartialApply):
                self._metrics.errors.labels(type(exc.cause).__name__).inc()
            self._failures += 1
            # One warning when an outage starts, then quiet until it ends: a store
            # that is down for an hour must not fill the application's logs.
            level = logging.WARNING if self._failures == 1 else logging.DEBUG
            log.log(
                level,
                "sync to %s failed: %s (deltas kept for the next sync)",
                self.store.describe(),
                error,
            )
        else:
            if self._failures:
                log.warning(
                    "sync to %s works again after %d failed attempts",
                    self.store.describe(),
                    self._failures,
                )
            self._failures = 0
        duration = time.perf_counter() - t0
        self._syncs += 1
        m = self._metrics
        m.duration.observe(duration)
        m.syncs.labels("ok" if error is None else "failed").inc()
        m.pending.set(len(self._shared.pending) if self._shared is not None else 0)
        if error is None:
            m.series.set(series)
            m.last_sync.set(started + duration)
        if resent:
            m.resets.inc()
        report = SyncReport(
            instance=self.instance.id,
            store=self.store.describe(),
            strategy=self.strategy.value,
            started=started,
            duration=duration,
            series=series,
            ok=error is None,
            error=error,
            resent_totals=resent,
        )
        self.last_report = report
        self._notify(report)
        return report

    def _notify(self, report: SyncReport) -> None:
        try:
            from metricache.plugins import get_plugin_manager

            get_plugin_manager().hook.metricache_cache_synced(report=report)
        except Exception:
            log.exception("a metricache_cache_synced hook failed")


def _stop_at_exit(ref: weakref.ReferenceType[Syncer]) -> None:
    syncer = ref()
    # Only a running syncer is stopped (with its final sync) at exit: one that was
    # never started, or was stopped already, is synced by whoever drives it.
    if syncer is None or syncer._pid != os.getpid() or not syncer.running:
        return
    try:
        syncer.stop(timeout=5.0)
    except Exception:
        log.exception("the final sync at exit failed")
