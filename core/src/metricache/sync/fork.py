"""Fork safety: a forked child is a new instance that reports only what it records itself.

What a process recorded before ``fork()`` is counted once, by that process. In the
child, right after the fork (``os.register_at_fork``):

* every counter and histogram series gets the values it inherited as its *base*:
  the child's contribution is what it adds on top, sent when it records into the
  series (a series it never touches is left to its parent);
* every gauge series records its inherited value as its base too (the child's own
  value leaves it out until the child sets the gauge), and the child reports a gauge
  only once it changes it;
* collectors' series start empty (a collector's values in a child are the child's);
* the syncer forgets its parent's batches, traces and refresh schedule, reconnects
  the store, and restarts its thread if it ran in the parent.

The registry does the first part for every registry, synced or not
(:meth:`metricache.registry.Registry._reset_after_fork`, which also resets locks: a
lock held by another thread at fork time would stay held forever in the child), so a
syncer started in the child later (a ``post_fork`` hook) knows the bases too. This
module does the rest for the syncers that exist at the fork.
"""

from __future__ import annotations

import logging
import os
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from metricache.sync.syncer import Syncer

__all__ = ["register_syncer"]

log = logging.getLogger("metricache.sync")

_syncers: weakref.WeakSet[Syncer] = weakref.WeakSet()


def register_syncer(syncer: Syncer) -> None:
    """Have ``syncer`` reset itself in every forked child of this process."""
    _syncers.add(syncer)


def _after_fork_in_child() -> None:
    for syncer in list(_syncers):
        try:
            syncer._after_fork()
        except Exception:  # never break a fork
            log.exception("resetting a syncer after fork failed")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
