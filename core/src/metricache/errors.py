"""Exceptions metricache raises, in one place so callers can catch them by family."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "CorruptValue",
    "FormatNotFound",
    "MetricacheError",
    "OutcomeUnknown",
    "PluginError",
    "StoreError",
    "StoreUnavailable",
    "UnsupportedOperation",
]


class MetricacheError(Exception):
    """Base class of every error metricache raises on purpose."""


class ConfigError(MetricacheError):
    """A configuration file, environment variable or option is invalid.

    ``problems`` lists every problem found, each prefixed by its path
    (``sync.interval: expected a number, got 'fast'``).
    """

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = f"{where}{self.problems[0]}"
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            message = f"{where}{len(self.problems)} problems:\n{lines}"
        super().__init__(message)


class PluginError(MetricacheError):
    """A plugin is broken: a hook name that matches no hookspec, a duplicate name, ..."""


class FormatNotFound(MetricacheError):
    """No format plugin answers to the requested name or media type."""


class StoreError(MetricacheError):
    """A store operation failed."""


class StoreUnavailable(StoreError):
    """The store could not be reached; nothing was applied."""


class OutcomeUnknown(StoreError):
    """The request may or may not have been applied (e.g. the reply was lost)."""


class UnsupportedOperation(StoreError):
    """The store does not declare the capability this operation belongs to."""


class CorruptValue(StoreError):
    """A value read from the store is not what metricache wrote there."""
