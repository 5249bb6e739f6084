"""Wiring from configuration: open the configured store, start a syncer on it."""

from __future__ import annotations

import atexit
import weakref
from types import TracebackType
from typing import TYPE_CHECKING

from metricache.config import Config, load_config
from metricache.registry import REGISTRY, Registry
from metricache.snapshot import Snapshot
from metricache.store import Store
from metricache.store_plugins import open_store_from_config
from metricache.sync.reader import merged_snapshot
from metricache.sync.syncer import Syncer

if TYPE_CHECKING:
    from metricache.export.coordinator import ExportCoordinator

__all__ = [
    "ViewReader",
    "coordinator_of",
    "open_reader",
    "read_view",
    "start",
    "started_syncer",
    "syncer_from_config",
    "syncer_view",
]


def syncer_from_config(
    config: Config, registry: Registry = REGISTRY, store: Store | None = None
) -> Syncer:
    """Return a (not yet started) syncer for ``registry`` as ``config`` describes."""
    return Syncer(
        registry,
        store if store is not None else open_store_from_config(config.store),
        interval=config.sync.interval,
        retention=config.sync.retention,
        liveness_ttl=config.sync.liveness_ttl,
        local_state_ttl=config.sync.local_state_ttl,
        namespace=config.sync.namespace,
        instance_id=config.instance_id,
    )


def start(config: Config | str | None = None, registry: Registry = REGISTRY) -> Syncer:
    """Load the configuration (a Config, a file path, or found), start and return a syncer.

    ``metricache.start()`` is all a program needs: it reads ``metricache.toml`` (or
    ``[tool.metricache]``) and ``METRICACHE_*``, opens the store and syncs every
    ``sync.interval`` seconds until exit, with the collectors that installed plugins
    offer (:func:`~metricache.collectors.install_collectors`). It builds the event
    router of ``[[events]]`` and ``[event_routing]`` on ``registry`` and makes it the
    default (``metricache.events.publish``). With ``[export] schedule = true`` it also
    runs the export coordinator in process (see :func:`coordinator_of`). An invalid or
    self-contradicting configuration raises ConfigError, every problem named by its
    path, before anything starts.
    """
    if not isinstance(config, Config):
        config = load_config(config)
    # The events package loads here, not with ``import metricache``.
    from metricache.events.default import install
    from metricache.events.router import EventRouter
    from metricache.events.settings import event_settings

    events = event_settings(config)
    syncer = syncer_from_config(config, registry).start()
    _started[registry] = weakref.ref(syncer)
    install(EventRouter.from_settings(events, registry), owned=True)
    if config.export.schedule:
        from metricache.export.coordinator import ExportCoordinator

        coordinator = ExportCoordinator.from_config(config, syncer=syncer, registry=registry)
        _coordinators[syncer] = coordinator.start()
        atexit.register(coordinator.stop, 5.0)
    return syncer


def started_syncer(registry: Registry = REGISTRY) -> Syncer | None:
    """Return the syncer the last :func:`start` started for ``registry``, if it still exists."""
    ref = _started.get(registry)
    return ref() if ref is not None else None


_started: weakref.WeakKeyDictionary[Registry, weakref.ref[Syncer]] = weakref.WeakKeyDictionary()


def coordinator_of(syncer: Syncer) -> ExportCoordinator | None:
    """Return the export coordinator :func:`start` runs next to ``syncer``, if any."""
    return _coordinators.get(syncer)


_coordinators: weakref.WeakKeyDictionary[Syncer, ExportCoordinator] = weakref.WeakKeyDictionary()


def read_view(config: Config, store: Store, instance_id: str | None = None) -> Snapshot:
    """Return the store's view (merged, or one instance's) as ``config`` names its keys."""
    return merged_snapshot(
        store,
        namespace=config.sync.namespace,
        retention=config.sync.retention,
        instance_id=instance_id,
    )


class ViewReader:
    """The configured store, opened to read its view from any process.

    A reader process (an exporter, a dashboard, a script) needs the store *and* the
    keys the syncers write: the namespace and retention of ``[sync]``. This holds
    both, so :meth:`view` reads what the syncers of the same configuration wrote.
    Made by :func:`open_reader`; close it when done (or use it in a ``with``).
    """

    def __init__(self, config: Config, store: Store) -> None:
        self.config = config
        self.store = store

    def view(self, instance_id: str | None = None) -> Snapshot:
        """Return the merged view (or, with ``instance_id``, that instance's own)."""
        return read_view(self.config, self.store, instance_id)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> ViewReader:
        return self

    def __exit__(
        self,
        typ: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ViewReader {self.store.describe()} namespace={self.config.sync.namespace!r}>"


def open_reader(config: Config | str | None = None) -> ViewReader:
    """Open the configured store for reading its view (a Config, a file path, or found).

    ``metricache.open_reader().view()`` is what a separate reader process needs: the
    configuration is loaded as :func:`start` loads it (file, then ``METRICACHE_*``),
    the store it names is opened, and the view is read with its ``[sync]`` namespace
    and retention, so a store configured with other values than the defaults is read
    at the keys its syncers wrote.
    """
    if not isinstance(config, Config):
        config = load_config(config)
    return ViewReader(config, open_store_from_config(config.store))


def syncer_view(
    syncer: Syncer,
    *,
    flush: bool = True,
    instance_id: str | None = None,
    store: Store | None = None,
) -> Snapshot:
    """Return the store's view (``store``, default the syncer's) as ``syncer`` names its keys.

    On a distributed store that is the merged view of every live instance; on a
    ``local_only`` one, the view of ``instance_id`` (default: the syncer's own
    instance, asked now, so a syncer inherited through fork answers for the child).
    With ``flush`` the syncer syncs first, so the view includes this process's latest
    changes.
    """
    if flush:
        syncer.flush()
    return merged_snapshot(
        syncer.store if store is None else store,
        namespace=syncer.keyspace.namespace,
        retention=syncer.keyspace.retention,
        strategy=syncer.strategy,
        instance_id=instance_id or syncer.instance.id,
    )
