"""``metricache status``: instance, store, capabilities, strategy, last syncs."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from metricache.cli.common import load, open_configured_store, store_parent
from metricache.errors import StoreError
from metricache.instance import current_instance
from metricache.masking import redact
from metricache.names import INSTANCE_LABEL
from metricache.snapshot import Sample, Snapshot
from metricache.sync.keyspace import Keyspace
from metricache.sync.reader import live_instances, local_instances, read_local, read_merged
from metricache.sync.strategy import Strategy, select_strategy

__all__ = ["register"]


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    parents: list[argparse.ArgumentParser],
) -> None:
    """Add the ``status`` subcommand."""
    parser = sub.add_parser(
        "status",
        parents=[*parents, store_parent()],
        help="show instance, store, capabilities, strategy and last syncs",
        description="Show this process's instance id, the configured store (passwords "
        "masked), its capabilities and where they come from, the sync strategy, whether "
        "the store answers, and, per live instance, when it last synced and how many "
        "syncs failed, and the event routing the configuration describes. Exits 1 when "
        "the store cannot be reached, 2 when the configuration is invalid or contradicts "
        "itself (each problem named by its path).",
        epilog="example: metricache status --store redis --option url=redis://127.0.0.1:6379/0",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(run=run)


def _per_instance(view: Snapshot, name: str) -> dict[str, float]:
    family = view.get(name)
    found: dict[str, float] = {}
    if family is None or INSTANCE_LABEL not in family.labelnames:
        return found
    position = family.labelnames.index(INSTANCE_LABEL)
    for sample in family.samples:
        if isinstance(sample, Sample):
            found[sample.labels[position]] = sample.value
    return found


def _total(view: Snapshot, name: str) -> float:
    family = view.get(name)
    if family is None:
        return 0.0
    return sum(s.value for s in family.samples if isinstance(s, Sample))


def gather(args: argparse.Namespace) -> dict[str, Any]:
    """Collect the status as a JSON-ready dict."""
    config = load(args)
    from metricache.events.settings import event_settings  # loaded only for this command

    events = event_settings(config)  # an invalid [[events]] entry exits 2, naming its path
    store = open_configured_store(config)
    try:
        choice = select_strategy(store)
        keyspace = Keyspace(config.sync.namespace, config.sync.retention)
        status: dict[str, Any] = {
            "instance": config.instance_id or current_instance().id,
            "config": config.source or "(defaults)",
            "store": store.describe(),
            "store_options": redact(config.store.options),
            "capabilities": sorted(c.value for c in choice.capabilities),
            "capabilities_source": choice.source,
            "strategy": choice.strategy.value,
            "namespace": config.sync.namespace,
            "interval": config.sync.interval,
            "retention": config.sync.retention,
            "event_mappings": f"{len(events.mappings)} ({len(events.configured)} configured)",
            "event_rules": len(events.routing.rules),
        }
        if choice.problem:
            status["problem"] = choice.problem
        started = time.perf_counter()
        try:
            store.ping()
        except StoreError as exc:
            status["reachable"] = False
            status["error"] = str(exc)
            return status
        status["reachable"] = True
        status["ping_ms"] = round((time.perf_counter() - started) * 1000, 2)
        now = time.time()
        instances: list[dict[str, Any]] = []
        if choice.strategy is Strategy.LOCAL_ONLY:
            for instance_id in sorted(local_instances(store, keyspace).values()):
                view = read_local(store, keyspace, instance_id)
                instances.append(
                    {
                        "id": instance_id,
                        "last_sync_ago": round(now - view.timestamp, 1),
                        "sync_errors": _total(view, "metricache_sync_errors"),
                    }
                )
        else:
            view = read_merged(store, keyspace)
            last = _per_instance(view, "metricache_last_sync_timestamp_seconds")
            pending = _per_instance(view, "metricache_sync_pending_series")
            for entries in live_instances(store, keyspace).values():
                instance_id = entries.get("@", "?")
                entry: dict[str, Any] = {"id": instance_id}
                if instance_id in last:
                    entry["last_sync_ago"] = round(now - last[instance_id], 1)
                if instance_id in pending:
                    entry["pending_series"] = pending[instance_id]
                instances.append(entry)
            status["series"] = view.series_count()
            status["sync_errors_total"] = _total(view, "metricache_sync_errors")
            status["store_resets_total"] = _total(view, "metricache_store_resets")
        status["instances"] = sorted(instances, key=lambda i: str(i["id"]))
        return status
    finally:
        store.close()


def run(args: argparse.Namespace) -> int:
    """Print the status; exit 1 when the store cannot be reached."""
    status = gather(args)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        width = max(len(k) for k in status)
        for key, value in status.items():
            if key == "instances":
                continue
            shown = ", ".join(value) if isinstance(value, list) else value
            print(f"{key.replace('_', ' '):<{width}}  {shown}")
        instances = status.get("instances", [])
        print(f"{'live instances':<{width}}  {len(instances)}")
        for entry in instances:
            details = []
            if "last_sync_ago" in entry:
                details.append(f"last sync {entry['last_sync_ago']} s ago")
            if "pending_series" in entry:
                details.append(f"{entry['pending_series']:g} series pending")
            print(f"  {entry['id']}" + (f"  ({', '.join(details)})" if details else ""))
    return 0 if status.get("reachable") else 1
