"""Model-based test of syncing: a fleet of instances through every interleaving hypothesis finds.

A ``RuleBasedStateMachine`` drives 2 to 4 instances (each a registry and a syncer, in
this process) against one store, through these rules: increments (whole and
fractional), observations, gauge sets, series removal, syncs, time advancing past the
retention window (connected instances keep syncing meanwhile, as their background
thread would), a lost request, a lost reply, an instance partitioned from the store and
reconnected, an instance killed, an instance forked, the store flushed. A model says
what the merged view must hold; after every step it is compared with what a reader
reads:

* every series that a connected instance holds is there, with exactly the sum of the
  contributions the model says the store has (on memcached, which is at least once,
  the exact sum plus what lost replies made it count twice, and never more than the
  increments that were in doubt);
* no counter, bucket, sum or count of a series decreases while it lives;
* every histogram is consistent: cumulative buckets, ``+Inf`` equal to its count;
* a series no connected instance holds is gone once the retention window has passed;
* gauges merge, by their mode, the values of the instances whose header lives.

The in-memory reference store runs on a controllable clock (time advances only when a
rule says so, and a week is as quick as a second); real redis-server and memcached run
with a short retention and real time. With real time a series may be between "surely
there" and "surely gone" at the moment of a check; such a series is not compared, and
before the next step that could depend on it the machine waits until it is decided.

Forks are made in this process the way ``os.fork()`` leaves a child (a copy of the
registry's memory, then the fork handler of the registry and a syncer that knows its
parent's epoch); real forks are tested in ``tests/sync/test_longevity.py``.
"""

from __future__ import annotations

import itertools
import secrets
import time
from collections.abc import Iterator
from typing import Any

import attrs
import metricache
import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from metricache.metrics import CounterChild, GaugeChild, HistogramChild
from metricache.snapshot import HistogramSample, Sample
from metricache.store import Capability, Store
from metricache.sync.keyspace import FRACTION_SCALE, join_fixed, split_fixed
from metricache.sync.syncer import Syncer
from pymemcache.client.base import Client  # type: ignore[import-untyped]

from tests.support.faulty import Faulty
from tests.support.reference_store import ReferenceOptions, ReferenceStore
from tests.support.servers import MemcachedServer, RedisServer

BUCKETS = (0.1, 1.0)
COUNTERS = ("a", "b")
SKey = tuple[str, str]  # ("c", label) counters, ("h", label) histograms, ("g", label) gauges
SERIES: tuple[SKey, ...] = (("c", "a"), ("c", "b"), ("h", "a"), ("g", "a"), ("m", ""))
Values = tuple[int, ...]


class FleetReferenceStore(ReferenceStore):
    """The reference store, shared by every client of its space: a fleet in one process."""

    name = "reference-fleet"
    capabilities = frozenset(
        {
            Capability.DISTRIBUTED,
            Capability.ATOMIC,
            Capability.CAS,
            Capability.LOCKING,
            Capability.EXACTLY_ONCE,
        }
    )


class FakeClock:
    """A clock that moves only when told to (for the syncers, the store and the reader)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self._mono = time.monotonic()
        self._wall = time.time()

    def monotonic(self) -> float:
        return self._mono + self.offset

    def time(self) -> float:
        return self._wall + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class RealClock:
    """The process's clocks; advancing means waiting."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def advance(self, seconds: float) -> None:
        time.sleep(seconds)


@attrs.define
class Backend:
    """One store to drive, and how time passes for it."""

    name: str
    retention: float
    clock: FakeClock | RealClock
    open: Any  # () -> Store
    flush: Any  # () -> None
    exact: bool  # exactly once (else at least once)
    slack: float = 0.0  # how much later than its TTL the store may expire a key

    @property
    def period(self) -> float:
        """How often a holder refreshes a series."""
        return self.retention / 3

    @property
    def tick(self) -> float:
        """How often connected instances sync while time advances."""
        return self.retention / 5

    @property
    def surely_there(self) -> float:
        """Seconds after its last holder left during which a series is surely there."""
        return self.retention - self.period - self.tick - 0.1

    @property
    def surely_gone(self) -> float:
        """Seconds after its last holder left after which a series is surely gone."""
        return self.retention + self.slack + 0.1


@attrs.define
class Life:
    """One life of a series in the store: what each contributor's batches put into it.

    ``stored`` is what the store holds from each contributor (on an at-least-once store
    it includes what lost replies made it count twice); ``true`` is each contributor's
    own value as of its last applied batch; ``in_doubt`` adds up the deltas of batches
    whose reply was lost (the most an at-least-once store may count twice).
    """

    stored: dict[tuple[str, int], Values] = attrs.field(factory=dict)
    true: dict[tuple[str, int], Values] = attrs.field(factory=dict)
    in_doubt: Values | None = None
    orphan_since: float | None = None  # when its last connected holder went away


class Node:
    """One instance: a registry of the fleet's metrics, a syncer, a faulty store."""

    def __init__(self, machine: FleetMachine, name: str, registry: metricache.Registry) -> None:
        self.machine = machine
        self.name = name
        self.registry = registry
        self.c = metricache.Counter("c", "C", ["k"], registry=registry)
        self.h = metricache.Histogram("h", "H", ["k"], buckets=BUCKETS, registry=registry)
        self.g = metricache.Gauge("g", "G", ["k"], registry=registry, merge="sum")
        self.m = metricache.Gauge("m", "M", registry=registry, merge="max")
        self.store = Faulty(machine.backend.open())
        self.syncer: Syncer
        self.connected = True
        self.held: set[SKey] = set()  # series recorded into (and not removed since)
        self.base: dict[SKey, Values] = {}  # what a forked child inherited
        self.incarnation: dict[SKey, int] = {}
        self.retired: list[tuple[SKey, int, Values]] = []  # removed, final delta unsent
        # Gauge values this node reports (its own): an unlabelled gauge exists, at 0, from
        # its declaration on.
        self.gauges: dict[SKey, float] = {("m", ""): 0.0}
        self.reported: dict[SKey, float] = {}  # as of its last applied sync
        self.header_since: float | None = None  # last applied sync (header written)
        # What the syncer believes the store confirmed, per contributor: (life, values).
        self.sent: dict[tuple[SKey, tuple[str, int]], tuple[int, Values]] = {}

    def start_syncer(self) -> None:
        backend = self.machine.backend
        self.syncer = Syncer(
            self.registry,
            self.store,
            interval=backend.tick,
            retention=backend.retention,
            liveness_ttl=backend.retention,
            namespace=self.machine.namespace,
            instance_id=self.name,
            clock=backend.clock,
        )

    def child(self, key: SKey) -> Any:
        kind, label = key
        if kind == "c":
            return self.c.labels(label)
        if kind == "h":
            return self.h.labels(label)
        if kind == "g":
            return self.g.labels(label)
        return self.m._only_child()

    def local(self, key: SKey) -> Values:
        child = self.child(key)
        if isinstance(child, CounterChild):
            return split_fixed(child.get())
        assert isinstance(child, HistogramChild)
        counts, total = child.read()
        return (*counts, *split_fixed(total))

    def own(self, key: SKey) -> Values:
        local = self.local(key)
        base = self.base.get(key)
        return local if base is None else tuple(a - b for a, b in zip(local, base))

    def contributor(self, key: SKey) -> tuple[str, int]:
        return (self.name, self.incarnation.get(key, 0))


def _zero(key: SKey) -> Values:
    return (0, 0) if key[0] == "c" else (0,) * (len(BUCKETS) + 1) + (0, 0)


def _add(a: Values, b: Values) -> Values:
    return tuple(x + y for x, y in zip(a, b))


def _normal(values: Values) -> Values:
    """The same value with its billionths in [0, 1e9) (a sum of them may carry over)."""
    *counts, whole, nanos = values
    carry, nanos = divmod(nanos, FRACTION_SCALE)
    return (*counts, whole + carry, nanos)


def _sub(a: Values, b: Values) -> Values:
    return tuple(x - y for x, y in zip(a, b))


class FleetMachine(RuleBasedStateMachine):
    """The fleet and its model; ``backend`` is set by the test that runs it."""

    backend: Backend

    def __init__(self) -> None:
        super().__init__()
        self.namespace = "m" + secrets.token_hex(5)
        self.nodes: dict[str, Node] = {}
        self.dead: list[Node] = []  # killed: their gauges stay until their header expires
        self.names = (f"n{k}" for k in itertools.count())
        self.lives: dict[SKey, Life] = {}
        self.previous: dict[SKey, tuple[int, Values]] = {}  # (life id, values) last seen
        self.life_ids: dict[SKey, int] = {}
        self.reader = self.backend.open()

    # -- the model ---------------------------------------------------------------------

    def now(self) -> float:
        return self.backend.clock.monotonic()

    def _life(self, key: SKey) -> Life:
        life = self.lives.get(key)
        if life is None:
            life = self.lives[key] = Life()
            self.life_ids[key] = self.life_ids.get(key, 0) + 1
        return life

    def _status(self, key: SKey) -> str:
        """``there``, ``gone`` or ``unsure`` for a counter or histogram series."""
        life = self.lives.get(key)
        if life is None:
            return "gone"
        if life.orphan_since is None:
            return "there"
        elapsed = self.now() - life.orphan_since
        if elapsed < self.backend.surely_there:
            return "there"
        if elapsed > self.backend.surely_gone:
            del self.lives[key]
            return "gone"
        return "unsure"

    def _holders(self, key: SKey) -> list[Node]:
        return [n for n in self.nodes.values() if n.connected and key in n.held]

    def _update_orphans(self) -> None:
        for key, life in list(self.lives.items()):
            if self._status(key) == "gone":
                continue
            if self._holders(key):
                life.orphan_since = None
            elif life.orphan_since is None:
                life.orphan_since = self.now()

    def _settle(self) -> None:
        """Wait until no series is between there and gone (real time only)."""
        while any(self._status(k) == "unsure" for k in list(self.lives)):
            time.sleep(0.1)

    def _applied(self, node: Node, *, reply_lost: bool = False) -> None:
        """The store applied a batch of ``node``'s: what it holds is in the store now.

        Each series gets the delta from what the syncer believes confirmed (in the
        series' current life; a series it knows in no life gets its whole value). A
        lost reply leaves that belief alone on an at-least-once store, so the next
        batch carries the same delta again; an exactly-once store recognises it.
        """
        entries = [(key, (node.name, inc), values) for key, inc, values in node.retired]
        if not reply_lost or self.backend.exact:
            node.retired.clear()
        for key in node.held:
            if key[0] not in "gm":
                entries.append((key, node.contributor(key), node.own(key)))
        for key, contributor, own in entries:
            life = self._life(key)
            life_id = self.life_ids[key]
            sent = node.sent.get((key, contributor))
            already = sent[1] if sent is not None and sent[0] == life_id else _zero(key)
            delta = _sub(own, already)
            life.stored[contributor] = _add(life.stored.get(contributor, _zero(key)), delta)
            life.true[contributor] = own
            if reply_lost and not self.backend.exact:
                life.in_doubt = _add(life.in_doubt or _zero(key), delta)
            else:
                node.sent[(key, contributor)] = (life_id, own)
        node.reported = dict(node.gauges)
        node.header_since = self.now()

    def _sync(self, node: Node) -> None:
        report = node.syncer.flush()
        if node.connected:
            assert report.ok, report.error
            self._applied(node)
        else:
            assert not report.ok

    def _keep_alive(self) -> None:
        """Connected instances sync as their background thread would (real time)."""
        if isinstance(self.backend.clock, FakeClock):
            return
        for node in self.nodes.values():
            if node.connected and (
                node.header_since is None or self.now() - node.header_since > self.backend.tick
            ):
                self._sync(node)

    def _node(self, index: int) -> Node:
        nodes = list(self.nodes.values())
        return nodes[index % len(nodes)]

    def _step(self) -> None:
        self._settle()
        self._keep_alive()

    # -- rules -------------------------------------------------------------------------

    @initialize()
    def two_instances(self) -> None:
        for _ in range(2):
            self.start_instance()

    @precondition(lambda self: len(self.nodes) < 4)
    @rule()
    def start_instance(self) -> None:
        name = next(self.names)
        node = Node(self, name, metricache.Registry())
        node.start_syncer()
        self.nodes[name] = node

    @rule(
        index=st.integers(0, 3),
        label=st.sampled_from(COUNTERS),
        amount=st.one_of(st.integers(0, 1000).map(float), st.sampled_from([0.01, 0.1, 2.5])),
    )
    def inc(self, index: int, label: str, amount: float) -> None:
        self._step()
        node = self._node(index)
        node.child(("c", label)).inc(amount)
        node.held.add(("c", label))

    @rule(index=st.integers(0, 3), value=st.sampled_from([0.05, 0.5, 5.0, 0.1]))
    def observe(self, index: int, value: float) -> None:
        self._step()
        node = self._node(index)
        node.child(("h", "a")).observe(value)
        node.held.add(("h", "a"))

    @rule(index=st.integers(0, 3), which=st.sampled_from(["g", "m"]), value=st.integers(-5, 50))
    def set_gauge(self, index: int, which: str, value: int) -> None:
        self._step()
        node = self._node(index)
        key: SKey = (which, "a" if which == "g" else "")
        child = node.child(key)
        assert isinstance(child, GaugeChild)
        child.set(value)
        node.held.add(key)
        node.gauges[key] = float(value)

    @rule(index=st.integers(0, 3), label=st.sampled_from(COUNTERS))
    def remove(self, index: int, label: str) -> None:
        self._step()
        node = self._node(index)
        key: SKey = ("c", label)
        if key not in node.held:
            return
        node.retired.append((key, node.incarnation.get(key, 0), node.own(key)))
        node.c.remove(label)
        node.held.discard(key)
        node.base.pop(key, None)
        node.incarnation[key] = node.incarnation.get(key, 0) + 1
        self._update_orphans()

    @rule(index=st.integers(0, 3))
    def sync(self, index: int) -> None:
        self._step()
        self._sync(self._node(index))

    @rule(
        index=st.integers(0, 3),
        label=st.sampled_from(COUNTERS),
        amount=st.integers(1, 100).map(float),
    )
    def sync_losing_the_reply(self, index: int, label: str, amount: float) -> None:
        """A sync whose batch (new increments, gauges, refreshes) lands; its reply is lost."""
        self._step()
        node = self._node(index)
        if not node.connected:
            return
        # A sync first, so that the next one is one batch the model can tell the
        # content of (no retry, no store epoch to learn, nothing lost to send again).
        self._sync(node)
        node.child(("c", label)).inc(amount)
        node.held.add(("c", label))
        node.store.lose_reply_next = True
        assert not node.syncer.flush().ok
        self._applied(node, reply_lost=True)

    @rule(index=st.integers(0, 3))
    def sync_losing_the_request(self, index: int) -> None:
        self._step()
        node = self._node(index)
        if not node.connected:
            return
        node.store.lose_next = True
        assert not node.syncer.flush().ok

    @rule(index=st.integers(0, 3))
    def partition(self, index: int) -> None:
        self._step()
        node = self._node(index)
        node.connected = False
        node.store.partitioned = True
        self._update_orphans()

    @rule(index=st.integers(0, 3))
    def reconnect(self, index: int) -> None:
        self._step()
        node = self._node(index)
        node.connected = True
        node.store.partitioned = False
        self._update_orphans()

    @precondition(lambda self: len(self.nodes) > 1)
    @rule(index=st.integers(0, 3))
    def kill(self, index: int) -> None:
        self._step()
        node = self._node(index)
        node.store.partitioned = True  # nothing it does reaches the store any more
        node.connected = False
        del self.nodes[node.name]
        self.dead.append(node)
        self._update_orphans()

    @precondition(lambda self: len(self.nodes) < 4)
    @rule(index=st.integers(0, 3))
    def fork(self, index: int) -> None:
        self._step()
        parent = self._node(index)
        registry = metricache.Registry()
        child = Node(self, next(self.names), registry)
        # The child's memory is a copy of its parent's at the fork.
        for key in SERIES:
            kind, label = key
            metrics: dict[str, metricache.metrics.MetricBase[Any]] = {
                "c": parent.c,
                "h": parent.h,
                "g": parent.g,
                "m": parent.m,
            }
            source = metrics[kind]._children.get((label,) if label else ())
            if source is None:
                continue
            target = child.child(key)
            if isinstance(source, CounterChild):
                target._value = source._value
            elif isinstance(source, HistogramChild):
                target._counts = list(source._counts)
                target._sum = source._sum
            else:
                target._value, target._stamp, target._base = (
                    source._value,
                    source._stamp,
                    source._base,
                )
            if kind in "ch":
                child.base[key] = child.local(key)
        registry._reset_after_fork()
        child.gauges = {}  # what it inherited is its parent's to report
        child.start_syncer()
        # The syncer of a forked child knows its parent's epoch.
        assert child.syncer._shared is not None
        assert parent.syncer._shared is not None
        child.syncer._shared.epoch = parent.syncer._shared.epoch
        child.connected = parent.connected
        child.store.partitioned = parent.store.partitioned
        self.nodes[child.name] = child

    @rule()
    def advance_past_the_retention(self) -> None:
        """Time passes: 2.5 retention windows, connected instances syncing meanwhile."""
        self._settle()
        backend = self.backend
        deadline = self.now() + 2.5 * backend.retention + backend.slack
        while self.now() < deadline:
            backend.clock.advance(backend.tick)
            for node in list(self.nodes.values()):
                if node.connected:
                    self._sync(node)
            self._update_orphans()

    @rule()
    def flush_the_store(self) -> None:
        self._step()
        self.backend.flush()
        self.lives.clear()
        for node in [*self.nodes.values(), *self.dead]:
            node.header_since = None

    # -- what must hold after every step -----------------------------------------------

    def _expected(self, key: SKey) -> tuple[Values, Values, Values]:
        """What the store holds, the contributors' true sum, and what was in doubt."""
        life = self.lives[key]
        stored = true = _zero(key)
        for values in life.stored.values():
            stored = _add(stored, values)
        for values in life.true.values():
            true = _add(true, values)
        return stored, true, life.in_doubt or _zero(key)

    def _read(self) -> metricache.Snapshot:
        return metricache.merged_snapshot(
            self.reader,
            namespace=self.namespace,
            retention=self.backend.retention,
            now=self.backend.clock.time(),
        )

    @invariant()
    def the_merged_view_is_what_the_model_says(self) -> None:
        if not self.nodes:
            return
        self._update_orphans()
        view = self._read()
        for key in SERIES:
            if key[0] in "gm":
                self._check_gauge(view, key)
                continue
            status = self._status(key)
            found = _values(view, key)
            if status == "unsure":
                self.previous.pop(key, None)
                continue
            if status == "gone":
                assert found is None, f"{key} should have expired: {found}"
                self.previous.pop(key, None)
                continue
            assert found is not None, f"{key} is missing while it lives"
            stored, true, in_doubt = self._expected(key)
            assert found == _normal(stored), (key, found, stored)
            if self.backend.exact:
                assert found == _normal(true), (key, found, true)
            else:  # at least once: never less, at most what was in doubt more
                excess = _sub(stored, true)
                assert all(0 <= e <= d for e, d in zip(excess, in_doubt)), (key, excess, in_doubt)
            life_id = self.life_ids[key]
            before = self.previous.get(key)
            if before is not None and before[0] == life_id:
                assert _never_less(found, before[1]), (key, before, found)
            self.previous[key] = (life_id, found)

    def _check_gauge(self, view: metricache.Snapshot, key: SKey) -> None:
        """Gauges merge over the instances whose header lives (their last applied sync
        was less than the liveness TTL ago); one that may or may not be live is not
        compared."""
        values: list[float] = []
        liveness = self.backend.retention
        for node in [*self.nodes.values(), *self.dead]:
            if node.header_since is None:
                continue
            elapsed = self.now() - node.header_since
            if elapsed > liveness + self.backend.slack + 0.3:
                continue
            if elapsed > liveness - 0.3:
                return  # its header may or may not be there: not compared
            if key in node.reported:
                values.append(node.reported[key])
        family = view.get("g" if key[0] == "g" else "m")
        sample = None
        if family is not None:
            for s in family.samples:
                if s.labels == ((key[1],) if key[1] else ()):
                    sample = s
        if not values:
            assert sample is None, (key, sample)
            return
        assert isinstance(sample, Sample), (key, values)
        expected = sum(values) if key[0] == "g" else max(values)
        assert sample.value == expected, (key, sample.value, values)


def _never_less(now: Values, then: Values) -> bool:
    """Whether no count and no sum of a series went down (the integers of a value whose
    billionths wrapped around compare as the value, not one by one)."""
    *counts_now, whole_now, nanos_now = now
    *counts_then, whole_then, nanos_then = then
    return all(a >= b for a, b in zip(counts_now, counts_then)) and join_fixed(
        whole_now, nanos_now
    ) >= join_fixed(whole_then, nanos_then)


def _values(view: metricache.Snapshot, key: SKey) -> Values | None:
    """A series of the view as the integers the store keeps (None when absent)."""
    kind, label = key
    family = view.get(kind)
    if family is None:
        return None
    for sample in family.samples:
        if sample.labels != (label,):
            continue
        if isinstance(sample, HistogramSample):
            counts = [b - a for a, b in itertools.pairwise((0, *sample.buckets))]
            assert list(sample.buckets) == sorted(sample.buckets)  # cumulative
            assert sample.buckets[-1] == sample.count  # +Inf is the count
            return (*counts, *split_fixed(sample.sum))
        assert isinstance(sample, Sample)
        return split_fixed(sample.value)
    return None


def _run(backend: Backend, examples: int, steps: int) -> None:
    machine = type(f"Fleet_{backend.name}", (FleetMachine,), {"backend": backend})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
        ),
    )


def test_a_fleet_on_the_reference_store_with_a_controllable_clock() -> None:
    clock = FakeClock()
    space = f"fleet-{secrets.token_hex(4)}"

    def open_store() -> Store:
        store = FleetReferenceStore(ReferenceOptions(space=space))
        store.space.clock = clock.monotonic
        return store

    def flush() -> None:
        FleetReferenceStore(ReferenceOptions(space=space)).space.data.clear()

    _run(Backend("reference", 2.0, clock, open_store, flush, exact=True), 60, 40)


@pytest.fixture
def fleet_redis() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture
def fleet_memcached() -> Iterator[MemcachedServer]:
    with MemcachedServer() as server:
        yield server


@pytest.mark.slow
def test_a_fleet_on_a_real_redis_with_a_short_retention(fleet_redis: RedisServer) -> None:
    def open_store() -> Store:
        return metricache.open_store("redis", url=fleet_redis.url)

    def flush() -> None:
        client = redis.Redis.from_url(fleet_redis.url)
        client.flushall()
        client.close()

    _run(Backend("redis", 1.5, RealClock(), open_store, flush, exact=True), 8, 25)


@pytest.mark.slow
def test_a_fleet_on_a_real_memcached_with_a_short_retention(
    fleet_memcached: MemcachedServer,
) -> None:
    def open_store() -> Store:
        return metricache.open_store("memcached", url=fleet_memcached.url)

    def flush() -> None:
        client = Client(("127.0.0.1", fleet_memcached.port))
        client.flush_all(noreply=False)
        client.close()

    # memcached counts expiry in whole seconds and metricache adds one: a key may live
    # up to two seconds past its TTL.
    backend = Backend("memcached", 2.0, RealClock(), open_store, flush, exact=False, slack=2.0)
    _run(backend, 6, 25)
