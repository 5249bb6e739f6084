"""Moving metrics between processes: the syncer, its batches, and the reader.

Data flows one way: hot path -> :class:`~metricache.sync.syncer.Syncer` -> store ->
:func:`~metricache.sync.reader.merged_snapshot` -> formats and exporters.
"""

from __future__ import annotations

from metricache.sync.reader import merged_snapshot
from metricache.sync.strategy import Strategy, StrategyChoice, select_strategy
from metricache.sync.syncer import Syncer

__all__ = ["Strategy", "StrategyChoice", "Syncer", "merged_snapshot", "select_strategy"]
