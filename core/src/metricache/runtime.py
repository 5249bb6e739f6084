"""Wiring from configuration: open the configured store, start a syncer on it."""

from __future__ import annotations

import atexit
import weakref
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

__all__ = ["coordinator_of", "read_view", "start", "syncer_from_config"]


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
    ``sync.interval`` seconds until exit. It builds the event router of
    ``[[events]]`` and ``[event_routing]`` on ``registry`` and makes it the default
    (``metricache.events.publish``). With ``[export] schedule = true`` it also runs
    the export coordinator in process (see :func:`coordinator_of`). An invalid or
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
    install(EventRouter.from_settings(events, registry), owned=True)
    if config.export.schedule:
        from metricache.export.coordinator import ExportCoordinator

        coordinator = ExportCoordinator.from_config(config, syncer=syncer, registry=registry)
        _coordinators[syncer] = coordinator.start()
        atexit.register(coordinator.stop, 5.0)
    return syncer


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
