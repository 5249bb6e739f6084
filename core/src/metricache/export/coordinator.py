"""The export coordinator: scheduled exports in process, before anything they cover expires.

An :class:`ExportCoordinator` runs in a daemon thread (:meth:`~ExportCoordinator.start`)
or is driven by calling :meth:`~ExportCoordinator.tick`. Time is cut into periods of
``interval`` seconds aligned on the clock, so instances agree on their numbers
without talking. Each period is exported once, when a coordinator gets to it while
it is the current period.

How instances share the work depends on the store's strategy:

``distributed_atomic`` (stores with ``locking``)
    One lease for the namespace: the instance that holds it runs the export job
    (attempts and retries) and records the period as done in the store before it
    lets the lease go. Another instance checks that record under the lease, so a
    period is exported once. A holder that dies stops renewing; its lease expires
    within ``lease_ttl`` seconds and another instance exports the period.
``distributed_basic`` (no locking)
    The first instance to increment the period's claim counter exports it (``incr``
    is atomic on these stores). There is no lease: a claimant that dies, or whose
    claim reply is lost, leaves the period unexported (the next period's export
    covers its data, which is cumulative). A period is exported twice only if its
    claim key disappears while the period is current (eviction, a restart of the
    store).
``local_only``
    No coordination: each instance exports its own view every period.

TTL safety (see :mod:`metricache.export.schedule`): an attempt that starts after
its latest start first extends the TTL of everything it covers by the overdue time
plus the safety margin; a failed attempt extends it by the backoff delay plus the
margin, so nothing a pending export covers expires before its retry.
"""

from __future__ import annotations

import enum
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType

import attrs

from metricache.background import BackgroundLoop
from metricache.collectors import install_collectors
from metricache.config import Config
from metricache.errors import ConfigError, StoreError
from metricache.export.lease import Lease
from metricache.export.schedule import (
    Timing,
    backoff_delay,
    late_by,
    late_extension,
    period_of,
    period_start,
    retry_extension,
)
from metricache.exporters import Exporter, ExportRequest, open_exporter
from metricache.exporting import ExportOutcome, export_snapshot
from metricache.formats import get_format
from metricache.instance import current_instance, instance_key
from metricache.metrics import Counter, Gauge, Histogram
from metricache.registry import REGISTRY, Registry
from metricache.snapshot import Snapshot
from metricache.store import Store
from metricache.sync.keyspace import Keyspace
from metricache.sync.reader import extend_retention, read_local, read_merged
from metricache.sync.strategy import Strategy, select_strategy
from metricache.sync.syncer import Syncer

__all__ = ["ExportCoordinator", "TickAction", "TickResult"]

log = logging.getLogger("metricache.export")

_NAME = re.compile(r"[A-Za-z0-9_.-]+")


class TickAction(str, enum.Enum):
    """What one :meth:`ExportCoordinator.tick` did."""

    IDLE = "idle"
    """Nothing was due."""
    EXPORTED = "exported"
    """An export delivered to every exporter."""
    RETRYING = "retrying"
    """An attempt failed; another follows after a backoff delay."""
    GAVE_UP = "gave_up"
    """The last allowed attempt failed; the period is given up."""
    DONE_ELSEWHERE = "done_elsewhere"
    """Another instance exported (or claimed) the current period."""
    BUSY = "busy"
    """Another instance holds the export lease."""
    UNAVAILABLE = "unavailable"
    """The store could not be asked whether the period is due; asked again soon."""
    LEASE_LOST = "lease_lost"
    """The lease expired while a retry was pending; another instance took over."""
    TIMED_OUT = "timed_out"
    """An attempt outlived the export timeout: abandoned, its lease given up, retried later."""


@attrs.frozen(kw_only=True)
class TickResult:
    """The outcome of one tick.

    ``next_at`` is when (on the coordinator's clock) the next tick is wanted.
    ``late_by`` is how many seconds past its latest start an attempt began, and
    ``extended_by`` the TTL extension (seconds) given to what the export covers, if
    any. ``retry_in`` is the backoff delay after a failed attempt.
    """

    action: TickAction
    next_at: float
    period: int | None = None
    attempt: int = 0
    late_by: float = 0.0
    extended_by: float | None = None
    retry_in: float | None = None
    outcome: ExportOutcome | None = None
    error: str | None = None


class _ExportMetrics:
    """metricache's own metrics about exports, kept in the coordinator's registry."""

    def __init__(self, registry: Registry) -> None:
        self.exports = Counter(
            "metricache_exports",
            "Export attempts by result: completed, retried (failed, retried later), "
            "timed_out, gave_up",
            ["result"],
            registry=registry,
        )
        self.duration = Histogram(
            "metricache_export_duration_seconds",
            "Time taken by export attempts (read, render, deliver)",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
            registry=registry,
        )
        self.last_export = Gauge(
            "metricache_last_export_timestamp_seconds",
            "Unix time of the last completed export",
            registry=registry,
            merge="max",
        )
        self.extensions = Counter(
            "metricache_export_ttl_extensions",
            "TTL extensions of what an export covers, by reason: late, failed",
            ["reason"],
            registry=registry,
        )
        self.duplicates = Counter(
            "metricache_export_duplicates",
            "Periods this instance found exported by another instance as well",
            registry=registry,
        )
        self.timeouts = Counter(
            "metricache_export_timeouts",
            "Export attempts abandoned after the export timeout, by the exporter that hung",
            ["exporter"],
            registry=registry,
        )


def _export_metrics(registry: Registry) -> _ExportMetrics:
    found: _ExportMetrics = registry.self_metric("export_coordinator", _ExportMetrics)
    return found


@attrs.frozen
class _CoveringKeyspace(Keyspace):
    """A keyspace that also reads the registration generations of ``since`` (wall time).

    Registrations live in generations, and a reader consults those around the
    current time. An export retried for longer than a generation would stop seeing
    series registered when it started even though their TTLs were extended; it
    keeps reading the generations of its first attempt as well.
    """

    since: float = 0.0

    def read_generations(self, now: float | None = None) -> list[int]:
        """Return the generations around now and around ``since``."""
        current = Keyspace.read_generations(self, now)
        earlier = Keyspace.read_generations(self, self.since)
        return sorted(set(current) | set(earlier))


class _Tracked(Exporter):
    """Delivers through another exporter and remembers whether it did.

    A partly failed export retries only the exporters that failed: the others
    already have the bytes.
    """

    def __init__(self, inner: Exporter) -> None:
        super().__init__(inner.options)
        # An instance attribute: the request names the real exporter, not this wrapper.
        vars(self)["name"] = inner.name
        self.inner = inner
        self.delivered = False
        self.busy = False  # a delivery is running (it may outlive an abandoned attempt)

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        """Deliver through the wrapped exporter, then remember it succeeded."""
        if self.busy:
            raise TimeoutError("its delivery of an earlier attempt is still hanging")
        self.busy = True
        try:
            where = self.inner.deliver(payload, request)
        finally:
            self.busy = False
        self.delivered = True
        return where


@attrs.define
class _Job:
    """The export of one period, from its first attempt to success or giving up."""

    period: int
    exporters: list[_Tracked]
    since_wall: float
    next_at: float
    attempts: int = 0
    released: bool = False  # the lease was given up (a hung attempt): take it again first


class ExportCoordinator:
    """Export the store's view every period, TTL-safely, once across instances.

    ``store`` is read (merged view on distributed strategies, this instance's own
    view on ``local_only``) and rendered with the format called ``format``, then
    delivered to every exporter in ``exporters``. ``namespace`` and
    ``timing.retention`` must match the syncers' (they name the keys).
    ``strategy`` defaults to the syncer's, else the store's.

    ``name`` tells apart coordinators that export different things from one
    namespace (each name has its own lease and records); every instance running the
    same export must use the same name. ``syncer``: a syncer of this process,
    flushed before each export so that the export includes this process's latest
    changes. ``clock`` returns the time that
    periods and deadlines are computed on (tests pass a controllable one; all
    instances must use the same clock). ``on_result`` is called with every tick's
    result that is not idle. Self-metrics go to ``registry``, which also receives the
    collectors that installed plugins offer.
    """

    def __init__(
        self,
        store: Store,
        exporters: Sequence[Exporter],
        *,
        format: str = "prometheus",
        namespace: str = "metricache",
        name: str = "default",
        timing: Timing | None = None,
        strategy: Strategy | str | None = None,
        instance_id: str | None = None,
        syncer: Syncer | None = None,
        clock: Callable[[], float] = time.time,
        registry: Registry = REGISTRY,
        on_result: Callable[[TickResult], None] | None = None,
        local_state_ttl: float | None = None,
    ) -> None:
        if not exporters:
            raise ValueError("an export coordinator needs at least one exporter")
        if not _NAME.fullmatch(name):
            raise ValueError(
                f"a coordinator name holds only letters, digits, '_', '-' and '.'; got {name!r}"
            )
        self.name = name
        self.store = store
        self.exporters = list(exporters)
        self.format = get_format(format).name  # an unknown format fails here, not later
        self.timing = timing if timing is not None else Timing()
        self.namespace = namespace
        if strategy is not None:
            self.strategy = Strategy(strategy)
        elif syncer is not None:
            self.strategy = syncer.strategy
        else:
            self.strategy = select_strategy(store).strategy
        if instance_id is None:
            instance_id = syncer.instance.id if syncer is not None else current_instance().id
        self.instance_id = instance_id
        self.syncer = syncer
        # How long a local_only store keeps an instance's saved view (an extension
        # must never shorten it).
        if local_state_ttl is None:
            local_state_ttl = syncer.local_state_ttl if syncer is not None else 86400.0
        self.local_state_ttl = float(local_state_ttl)
        self._clock = clock
        self._registry = registry
        install_collectors(registry)
        self._metrics = _export_metrics(registry)
        self._on_result = on_result
        self._lease: Lease | None = None
        if self.strategy is Strategy.DISTRIBUTED_ATOMIC:
            self._lease = Lease(store, self._key("lease"), self.timing.lease, owner=instance_id)
        # When the last export read the store (or an extension made the data as safe
        # as that): the next export must start by reference + window.
        self._reference = clock()
        self._handled: int | None = None  # the last period settled (exported, elsewhere ...)
        self._job: _Job | None = None
        self._tick_lock = threading.Lock()
        self._loop = BackgroundLoop(
            "metricache-export-coordinator", self._background_tick, on_error=self._poll
        )

    @classmethod
    def from_config(
        cls,
        config: Config,
        store: Store | None = None,
        *,
        exporters: Sequence[Exporter] | None = None,
        syncer: Syncer | None = None,
        registry: Registry = REGISTRY,
        clock: Callable[[], float] = time.time,
        on_result: Callable[[TickResult], None] | None = None,
    ) -> ExportCoordinator:
        """Build a coordinator from the ``[export]`` and ``[sync]`` tables of ``config``.

        Without ``exporters``, the one ``export.exporter`` names, with
        ``export.options``. Without ``store``, the syncer's, else the configured one.
        Inconsistent timings raise :class:`~metricache.errors.ConfigError`.
        """
        settings = config.export
        try:
            timing = Timing(
                retention=config.sync.retention,
                safety_margin=settings.safety_margin,
                export_timeout=settings.timeout,
                interval=settings.interval,
                backoff_base=settings.backoff_base,
                backoff_cap=settings.backoff_cap,
                retries=settings.retries,
                lease_ttl=settings.lease_ttl,
            )
        except ValueError as exc:
            raise ConfigError([f"export: {exc}"], config.source) from None
        if exporters is None:
            exporters = [open_exporter(settings.exporter, settings.options)]
        if store is None:
            if syncer is not None:
                store = syncer.store
            else:
                from metricache.store_plugins import open_store_from_config

                store = open_store_from_config(config.store)
        return cls(
            store,
            exporters,
            format=settings.format,
            namespace=config.sync.namespace,
            timing=timing,
            instance_id=config.instance_id,
            syncer=syncer,
            clock=clock,
            registry=registry,
            on_result=on_result,
            local_state_ttl=config.sync.local_state_ttl,
        )

    # -- keys ----------------------------------------------------------------------------

    def _key(self, suffix: str) -> bytes:
        return f"{self.namespace}:export:{self.name}:{suffix}".encode()

    def _done_key(self, period: int) -> bytes:
        return self._key(f"done:{period}")

    def _claim_key(self, period: int) -> bytes:
        return self._key(f"claim:{period}")

    @property
    def _poll(self) -> float:
        """How often to look again when the lease is busy or the store unreachable."""
        return max(0.05, min(self.timing.period, self.timing.lease) / 4)

    @property
    def _marker_ttl(self) -> float:
        # A period's record must outlive every instance's chance to consider the period
        # current: the period itself, a late tick, and a lease that expires meanwhile.
        return 2 * self.timing.period + 2 * self.timing.lease

    # -- the thread ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the background thread is running."""
        return self._loop.running

    def start(self) -> ExportCoordinator:
        """Start the background thread (a no-op if it runs already)."""
        self._loop.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread (after the attempt in progress) and give the lease up.

        A pending retry is abandoned; with a lease, another instance takes the
        period over.
        """
        if not self._loop.stop(timeout):
            log.warning("the export coordinator did not stop within %.1f s", timeout)
            return
        with self._tick_lock:
            self._job = None
            if self._lease is not None:
                self._lease.release()

    def __enter__(self) -> ExportCoordinator:
        return self.start()

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _background_tick(self) -> float:
        result = self.tick()
        wait = result.next_at - self._clock()
        return min(max(wait, 0.0), self.timing.period)

    # -- one step --------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> TickResult:
        """Do what is due at ``now`` (default: the clock's time) and say what it was.

        Never raises store or exporter errors: they are logged, counted and retried.
        """
        with self._tick_lock:
            result = self._tick(self._clock() if now is None else now)
        if result.action is not TickAction.IDLE and self._on_result is not None:
            try:
                self._on_result(result)
            except Exception:
                log.exception("the export coordinator's on_result callback raised")
        return result

    def _tick(self, now: float) -> TickResult:
        job = self._job
        if job is not None:
            if now < job.next_at:
                return self._wait_for_retry(job, now)
            if job.released:
                return self._begin(job.period, now, job)
            return self._attempt(job, now)
        period = period_of(now, self.timing)
        if self._handled is not None and period <= self._handled:
            return TickResult(
                action=TickAction.IDLE,
                next_at=period_start(self._handled + 1, self.timing),
            )
        return self._begin(period, now)

    def _begin(self, period: int, now: float, job: _Job | None = None) -> TickResult:
        """Take the period on (lease, claim), then attempt its export.

        ``job`` is a job of this period that gave its lease up after a hung attempt.
        """
        try:
            if self.strategy is Strategy.DISTRIBUTED_ATOMIC:
                assert self._lease is not None
                marker = self.store.get(self._done_key(period))
                if marker is not None:
                    return self._settled_elsewhere(period, marker, now)
                if not self._lease.acquire():
                    return TickResult(
                        action=TickAction.BUSY, period=period, next_at=now + self._poll
                    )
                # Whoever held the lease before may have finished this very period.
                marker = self.store.get(self._done_key(period))
                if marker is not None:
                    self._lease.release()
                    return self._settled_elsewhere(period, marker, now)
            elif self.strategy is Strategy.DISTRIBUTED_BASIC:
                claims = self.store.incr(self._claim_key(period), 1, self._marker_ttl)
                if claims != 1:
                    return self._settled_elsewhere(period, None, now)
        except StoreError as exc:
            log.warning("export of period %d: the store cannot be asked: %s", period, exc)
            return TickResult(
                action=TickAction.UNAVAILABLE,
                period=period,
                next_at=now + self._poll,
                error=str(exc),
            )
        if job is None:
            job = _Job(
                period=period,
                exporters=[_Tracked(e) for e in self.exporters],
                since_wall=time.time(),
                next_at=now,
            )
        job.released = False
        self._job = job
        return self._attempt(job, now)

    def _settled_elsewhere(self, period: int, marker: bytes | None, now: float) -> TickResult:
        self._job = None
        self._handled = period
        exported_at = period_start(period, self.timing)
        if marker is not None:
            try:
                record = json.loads(marker)
                if record.get("result") == "completed":
                    exported_at = float(record["at"])
            except (ValueError, TypeError, KeyError, AttributeError):
                log.warning("the record of exported period %d is not readable", period)
        # The other instance's export protects what it read, as ours would have.
        self._reference = max(self._reference, exported_at)
        return TickResult(
            action=TickAction.DONE_ELSEWHERE,
            period=period,
            next_at=period_start(period + 1, self.timing),
        )

    def _wait_for_retry(self, job: _Job, now: float) -> TickResult:
        if self._lease is None or job.released:
            return TickResult(
                action=TickAction.IDLE, period=job.period, attempt=job.attempts, next_at=job.next_at
            )
        try:
            still_ours = self._lease.renew()
        except StoreError as exc:
            log.warning("could not renew the export lease: %s", exc)
            still_ours = True  # it lives on until its TTL; try again soon
        if not still_ours:
            log.warning(
                "the export lease expired while period %d waited for a retry; "
                "another instance takes over",
                job.period,
            )
            self._job = None
            return TickResult(action=TickAction.LEASE_LOST, period=job.period, next_at=now)
        return TickResult(
            action=TickAction.IDLE,
            period=job.period,
            attempt=job.attempts,
            next_at=min(job.next_at, now + self.timing.lease / 3),
        )

    # -- attempts --------------------------------------------------------------------------

    def _keyspace(self, job: _Job) -> _CoveringKeyspace:
        return _CoveringKeyspace(self.namespace, self.timing.retention, since=job.since_wall)

    def _read(self, keyspace: Keyspace) -> Snapshot:
        if self.strategy is Strategy.LOCAL_ONLY:
            return read_local(self.store, keyspace, self.instance_id)
        return read_merged(self.store, keyspace, strategy=self.strategy.value)

    def _extend(self, keyspace: Keyspace, extra: float, reason: str) -> bool:
        """Extend the TTL of everything the export covers by ``extra`` seconds."""
        try:
            if self.strategy is Strategy.LOCAL_ONLY:
                count = self._extend_local(keyspace, extra)
            else:
                count = extend_retention(self.store, keyspace, extra)
        except StoreError as exc:
            log.warning("could not extend the TTL of what the export covers: %s", exc)
            return False
        self._metrics.extensions.labels(reason).inc()
        log.info("extended the TTL of %d keys by %.1f s (%s export)", count, extra, reason)
        return True

    def _extend_local(self, keyspace: Keyspace, extra: float) -> int:
        # A saved view lives for local_state_ttl: extend from the longest life it can
        # have had, so the extension never shortens it.
        longest = max(self.local_state_ttl, keyspace.retention)
        ikey = instance_key(self.instance_id)
        views = self.store.touch_many([keyspace.local(ikey)], longest + extra)
        found = self.store.touch_many(
            [keyspace.local_instances()], longest + keyspace.generation_ttl + extra
        )
        return len(views) + len(found)

    def _attempt(self, job: _Job, now: float) -> TickResult:
        job.attempts += 1
        attempt = job.attempts
        will_retry = attempt <= self.timing.retries
        keyspace = self._keyspace(job)
        lateness = late_by(now, self._reference, self.timing)
        extended: float | None = None
        if lateness > 0:
            extra = late_extension(lateness, self.timing)
            log.warning(
                "the export of period %d starts %.1f s after its latest start; "
                "extending the TTL of what it covers by %.1f s",
                job.period,
                lateness,
                extra,
            )
            if self._extend(keyspace, extra, "late"):
                extended = extra
                self._reference = max(self._reference, now + extra)

        started = time.perf_counter()
        outcome: ExportOutcome | None = None
        hung: str | None = None
        error: str | None = None
        lease_lost = False
        if self.syncer is not None:
            self.syncer.flush()  # never raises; a failed flush leaves the store's view
        try:
            snapshot = self._read(keyspace)
        except StoreError as exc:
            error = f"cannot read the store: {exc}"
            log.warning("export of period %d, attempt %d: %s", job.period, attempt, error)
        else:
            pending = [e for e in job.exporters if not e.delivered]
            if self._lease is not None:
                with self._lease.kept_alive() as lost:
                    outcome, hung = self._export_within(snapshot, pending, attempt, will_retry)
                lease_lost = lost.is_set()
            else:
                outcome, hung = self._export_within(snapshot, pending, attempt, will_retry)
            if hung is not None:
                error = (
                    f"{hung}: no answer within the export timeout of "
                    f"{self.timing.export_timeout:g} s; the attempt was abandoned"
                )
            elif outcome is not None and not outcome.ok:
                error = "; ".join(
                    f"{f.request.exporter}: {type(f.error).__name__}: {f.error}"
                    for f in outcome.failed
                )
        self._metrics.duration.observe(time.perf_counter() - started)
        if hung is not None:
            return self._abandon(job, hung, error or "", now, lateness, extended, will_retry)

        if error is None:
            self._metrics.exports.labels("completed").inc()
            self._metrics.last_export.set(time.time())
            self._reference = now
            self._finish(job, "completed", now)
            return TickResult(
                action=TickAction.EXPORTED,
                period=job.period,
                attempt=attempt,
                late_by=lateness,
                extended_by=extended,
                outcome=outcome,
                next_at=self._next_period_at(now),
            )
        if lease_lost:
            # Another instance holds the lease now and exports the period itself.
            self._metrics.exports.labels("retried").inc()
            self._job = None
            return TickResult(
                action=TickAction.LEASE_LOST,
                period=job.period,
                attempt=attempt,
                late_by=lateness,
                extended_by=extended,
                outcome=outcome,
                error=error,
                next_at=now,
            )
        if will_retry:
            delay, extended = self._schedule_retry(job, now, extended)
            self._metrics.exports.labels("retried").inc()
            log.warning(
                "export of period %d failed (attempt %d of %d); retrying in %.1f s",
                job.period,
                attempt,
                self.timing.retries + 1,
                delay,
            )
            return TickResult(
                action=TickAction.RETRYING,
                period=job.period,
                attempt=attempt,
                late_by=lateness,
                extended_by=extended,
                retry_in=delay,
                outcome=outcome,
                error=error,
                next_at=min(job.next_at, now + self.timing.lease / 3)
                if self._lease is not None
                else job.next_at,
            )
        self._metrics.exports.labels("gave_up").inc()
        log.error(
            "export of period %d failed %d times; giving the period up: %s",
            job.period,
            attempt,
            error,
        )
        self._finish(job, "gave_up", now)
        return TickResult(
            action=TickAction.GAVE_UP,
            period=job.period,
            attempt=attempt,
            late_by=lateness,
            extended_by=extended,
            outcome=outcome,
            error=error,
            next_at=self._next_period_at(now),
        )

    def _export_within(
        self, snapshot: Snapshot, exporters: list[_Tracked], attempt: int, will_retry: bool
    ) -> tuple[ExportOutcome | None, str | None]:
        """Render and deliver in a thread, for at most the export timeout.

        Returns ``(outcome, None)``, or ``(None, what hung)`` when the timeout ran out:
        the thread is abandoned (it cannot be stopped; an exporter still busy with it
        fails at once in later attempts instead of piling up threads).
        """
        done: list[ExportOutcome] = []
        raised: list[BaseException] = []

        def run() -> None:
            try:
                done.append(self._export(snapshot, exporters, attempt, will_retry))
            except BaseException as exc:
                raised.append(exc)

        worker = threading.Thread(target=run, name="metricache-export-attempt", daemon=True)
        worker.start()
        worker.join(self.timing.export_timeout)
        if worker.is_alive():
            hung = next((f"exporter {e.name!r}" for e in exporters if e.busy), None)
            return None, hung or f"rendering the {self.format} format"
        if raised:
            raise raised[0]
        return done[0], None

    def _abandon(
        self,
        job: _Job,
        hung: str,
        error: str,
        now: float,
        lateness: float,
        extended: float | None,
        will_retry: bool,
    ) -> TickResult:
        """An attempt outlived the export timeout: count it failed, give the lease up."""
        name = hung.split("'")[1] if hung.startswith("exporter '") else hung
        self._metrics.timeouts.labels(name).inc()
        self._metrics.exports.labels("timed_out").inc()
        log.warning("export of period %d, attempt %d: %s", job.period, job.attempts, error)
        if not will_retry:
            # Given up here, but not recorded as settled: another instance may still
            # export the period (it takes the lease this one gives up now).
            self._job = None
            self._handled = job.period
            if self._lease is not None:
                self._lease.release()
            return TickResult(
                action=TickAction.GAVE_UP,
                period=job.period,
                attempt=job.attempts,
                late_by=lateness,
                extended_by=extended,
                error=error,
                next_at=self._next_period_at(now),
            )
        delay, extended = self._schedule_retry(job, now, extended)
        if self._lease is not None:
            # Not renewed for an attempt that hangs: another instance may take the
            # period meanwhile; this one takes the lease again before its retry.
            job.released = True
            self._lease.release()
        return TickResult(
            action=TickAction.TIMED_OUT,
            period=job.period,
            attempt=job.attempts,
            late_by=lateness,
            extended_by=extended,
            retry_in=delay,
            error=error,
            next_at=job.next_at,
        )

    def _schedule_retry(
        self, job: _Job, now: float, extended: float | None
    ) -> tuple[float, float | None]:
        """Back off after a failed attempt; extend what it covers past the retry.

        Returns the delay and the largest TTL extension given during the attempt.
        """
        delay = backoff_delay(job.attempts, self.timing)
        extra = retry_extension(delay, self.timing)
        if self._extend(self._keyspace(job), extra, "failed"):
            extended = extra if extended is None else max(extended, extra)
            self._reference = max(self._reference, now + extra)
        job.next_at = now + delay
        return delay, extended

    def _export(
        self, snapshot: Snapshot, exporters: list[_Tracked], attempt: int, will_retry: bool
    ) -> ExportOutcome:
        return export_snapshot(
            snapshot,
            self.format,
            exporters,
            attempt=attempt,
            will_retry=will_retry,
            registry=self._registry,
        )

    def _next_period_at(self, now: float) -> float:
        assert self._handled is not None
        if period_of(now, self.timing) > self._handled:
            return now  # a retry ran into a later period: that period is due now
        return period_start(self._handled + 1, self.timing)

    def _finish(self, job: _Job, result: str, now: float) -> None:
        """Record the period as settled (in the store too, under a lease) and let go."""
        self._job = None
        self._handled = job.period
        if self._lease is None:
            return
        record = json.dumps({"instance": self.instance_id, "at": now, "result": result}).encode()
        try:
            recorded = self.store.add(self._done_key(job.period), record, self._marker_ttl)
        except StoreError as exc:
            # Keeping the lease until it expires delays whoever would export again.
            log.warning(
                "could not record period %d as exported; another instance may export it "
                "again once the lease expires: %s",
                job.period,
                exc,
            )
            return
        if not recorded:
            self._metrics.duplicates.inc()
            log.error(
                "period %d was exported by another instance too (this instance's lease "
                "expired while it exported)",
                job.period,
            )
        self._lease.release()

    def __repr__(self) -> str:
        return (
            f"<ExportCoordinator {self.format} every {self.timing.period:g} s, "
            f"{self.strategy.value}, {self.store.describe()}>"
        )
