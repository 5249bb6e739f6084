"""Validation of metric and label names, with messages that name the broken rule.

The rules are Prometheus's: a metric name matches ``[a-zA-Z_:][a-zA-Z0-9_:]*``, a
label name matches ``[a-zA-Z_][a-zA-Z0-9_]*`` and must not start with ``__``
(reserved for Prometheus itself). Histograms reserve the label ``le``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "INSTANCE_LABEL",
    "LABEL_NAME_RULE",
    "METRIC_NAME_RULE",
    "full_metric_name",
    "validate_label_names",
    "validate_metric_name",
]

INSTANCE_LABEL = "metricache_instance"
"""The label a ``per_instance`` gauge's series get in the merged view, naming the instance.

Not ``instance``: Prometheus gives every scraped series an ``instance`` label (the
target's address) and would rename ours to ``exported_instance``.
"""

METRIC_NAME_RULE = "[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME_RULE = "[a-zA-Z_][a-zA-Z0-9_]*"

_METRIC_NAME = re.compile(METRIC_NAME_RULE)
_LABEL_NAME = re.compile(LABEL_NAME_RULE)


def validate_metric_name(name: str) -> str:
    """Return ``name`` if it is a valid metric name, else raise ``ValueError``."""
    if not isinstance(name, str):
        raise TypeError(f"metric name must be a str, got {type(name).__name__}")
    if not _METRIC_NAME.fullmatch(name):
        raise ValueError(
            f"invalid metric name {name!r}: a metric name must match {METRIC_NAME_RULE} "
            "(letters, digits, '_' and ':', not starting with a digit)"
        )
    return name


def validate_label_names(
    labelnames: Iterable[str], *, reserved: Iterable[str] = (), metric: str = ""
) -> tuple[str, ...]:
    """Return ``labelnames`` as a tuple after checking every name against the rules.

    ``reserved`` lists names the metric type keeps for itself (``le`` for histograms).
    """
    if isinstance(labelnames, str):
        raise TypeError(
            f"labelnames of {metric or 'a metric'} must be a sequence of names, "
            f"not the single string {labelnames!r}"
        )
    names = tuple(labelnames)
    reserved_set = set(reserved)
    seen: set[str] = set()
    where = f" of metric {metric!r}" if metric else ""
    for label in names:
        if not isinstance(label, str):
            raise TypeError(f"label name{where} must be a str, got {type(label).__name__}")
        if not _LABEL_NAME.fullmatch(label):
            raise ValueError(
                f"invalid label name {label!r}{where}: a label name must match "
                f"{LABEL_NAME_RULE} (letters, digits and '_', not starting with a digit)"
            )
        if label.startswith("__"):
            raise ValueError(
                f"invalid label name {label!r}{where}: names starting with '__' are "
                "reserved for Prometheus"
            )
        if label in reserved_set:
            raise ValueError(f"invalid label name {label!r}{where}: this metric type reserves it")
        if label in seen:
            raise ValueError(f"duplicate label name {label!r}{where}")
        seen.add(label)
    return names


def full_metric_name(name: str, namespace: str = "", subsystem: str = "", unit: str = "") -> str:
    """Join namespace, subsystem and name with ``_`` and append the unit if missing.

    This mirrors prometheus_client, so a declaration moved from it names the same
    series here.
    """
    parts = [p for p in (namespace, subsystem, name) if p]
    full = "_".join(parts)
    if unit and not full.endswith("_" + unit):
        full = f"{full}_{unit}"
    return validate_metric_name(full)
