"""Event mappings: which backends an event goes to, how often, and how urgently.

An :class:`EventMapping` names an event exactly (``task.completed``) or with a glob
(``task.*``, ``*.failed``). A :class:`MappingTable` holds a set of them and answers
"which mapping applies to this event name": of the mappings that match, the one
added last (as in ``.gitignore``), so what you add after the defaults overrides
them, globs included. Tables are immutable; the router swaps in a new one to
reconfigure (copy on write), so a publisher never sees a half-changed table.
"""

from __future__ import annotations

import enum
import fnmatch
import math
import re
import types
from collections.abc import Iterable, Mapping
from typing import NewType

import attrs

__all__ = [
    "Backend",
    "EventMapping",
    "EventPattern",
    "MappingTable",
    "MetadataValue",
    "Priority",
    "SamplingRate",
    "parse_backend",
    "parse_backends",
    "parse_pattern",
    "parse_priority",
    "parse_rate",
    "pattern_matches",
]


class Backend(str, enum.Enum):
    """Where a kept event goes."""

    METRICS = "metrics"
    """Event handlers (the ``metricache_handle_event`` hook) record metrics, at once."""
    TRACES = "traces"
    """The bounded trace recorder and tracing plugins, through a bounded queue."""
    LOGS = "logs"
    """The ``metricache.events`` logger, with structured extra fields, through a queue."""

    def __str__(self) -> str:
        return self.value


_PRIORITY_ORDER = ("low", "normal", "high", "critical")


class Priority(str, enum.Enum):
    """How urgent an event is when a backend's queue is full.

    Low is shed before normal, normal before high; critical is never shed
    silently (see :class:`~metricache.events.queue.PriorityQueue`).
    """

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    CRITICAL = "critical"

    rank: int
    """0 for low up to 3 for critical (a plain attribute: queues read it per event)."""

    def __init__(self, value: str) -> None:
        self.rank = _PRIORITY_ORDER.index(value)

    def __str__(self) -> str:
        return str(self.value)


EventPattern = NewType("EventPattern", str)
"""An event name (``task.completed``) or a glob of names (``task.*``)."""
SamplingRate = NewType("SamplingRate", float)
"""The fraction of events kept, from 0 to 1."""
MetadataValue = NewType("MetadataValue", object)
"""A metadata value: a string, number or boolean."""

_PATTERN = re.compile(r"[A-Za-z0-9_.:/\-*?\[\]!]+")
_GLOB_CHARS = frozenset("*?[")


def _describe(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


def _choices(enum_type: type[enum.Enum]) -> str:
    return ", ".join(repr(member.value) for member in enum_type)


def parse_pattern(value: object) -> str:
    """Return ``value`` if it is an event name or glob, else raise ``ValueError``."""
    if not isinstance(value, str):
        raise ValueError(f"expected an event name or glob such as 'task.*', got {_describe(value)}")
    if not _PATTERN.fullmatch(value):
        raise ValueError(
            "expected an event name or glob such as 'task.*' (letters, digits and "
            f"_ . : / - * ? [ ] !), got {value!r}"
        )
    return value


def parse_backend(value: object) -> Backend:
    """Return the :class:`Backend` named ``value``, else raise ``ValueError``."""
    if isinstance(value, Backend):
        return value
    if isinstance(value, str):
        try:
            return Backend(value)
        except ValueError:
            pass
    raise ValueError(f"unknown backend {_describe(value)}; expected one of {_choices(Backend)}")


def parse_backends(value: object) -> tuple[Backend, ...]:
    """Return the backends of a list (or one name), without repeats."""
    if isinstance(value, (str, Backend)):
        value = [value]
    if not isinstance(value, (list, tuple, set, frozenset)):
        raise ValueError(
            f"expected a list of backends ({_choices(Backend)}), got {_describe(value)}"
        )
    found: dict[Backend, None] = {}
    for item in value:
        found[parse_backend(item)] = None
    return tuple(found)


def parse_priority(value: object) -> Priority:
    """Return the :class:`Priority` named ``value``, else raise ``ValueError``."""
    if isinstance(value, Priority):
        return value
    if isinstance(value, str):
        try:
            return Priority(value)
        except ValueError:
            pass
    raise ValueError(f"unknown priority {_describe(value)}; expected one of {_choices(Priority)}")


def parse_rate(value: object) -> float:
    """Return ``value`` as a sampling rate (a number from 0 to 1), else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number from 0 to 1, got {_describe(value)}")
    if math.isnan(value) or not 0 <= value <= 1:
        raise ValueError(f"expected a number from 0 to 1, got {value!r}")
    return float(value)


def parse_metadata_value(value: object) -> object:
    """Return ``value`` if it is a string, number or boolean, else raise ``ValueError``."""
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"expected a string, number or boolean, got {_describe(value)}")
    return value


def _metadata(value: Mapping[str, object] | None) -> Mapping[str, object]:
    if value is None:
        return types.MappingProxyType({})
    if not isinstance(value, Mapping):
        raise ValueError(f"metadata: expected a table, got {_describe(value)}")
    checked = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise ValueError(f"metadata: keys must be strings, got {key!r}")
        checked[key] = parse_metadata_value(item)
    return types.MappingProxyType(checked)


def _named(field: str, exc: ValueError) -> ValueError:
    return ValueError(f"{field}: {exc}")


def _event_field(value: object) -> EventPattern:
    try:
        return EventPattern(parse_pattern(value))
    except ValueError as exc:
        raise _named("event", exc) from None


def _backends_field(value: object) -> tuple[Backend, ...]:
    try:
        return parse_backends(value)
    except ValueError as exc:
        raise _named("backends", exc) from None


def _rate_field(value: object) -> SamplingRate:
    try:
        return SamplingRate(parse_rate(value))
    except ValueError as exc:
        raise _named("sampling_rate", exc) from None


def _priority_field(value: object) -> Priority:
    try:
        return parse_priority(value)
    except ValueError as exc:
        raise _named("priority", exc) from None


@attrs.frozen(kw_only=True)
class EventMapping:
    """How events named ``event`` (a name or a glob) are routed.

    ``backends``: where kept events go (``metrics``, ``traces``, ``logs``).
    ``enabled``: a disabled mapping routes nothing (and hides broader globs).
    ``sampling_rate``: the fraction of events kept, decided once per event.
    ``priority``: what a full backend queue sheds first.
    ``metadata``: free-form values for backends and plugins (``log_level`` sets
    the level of the logs backend).

    Strings are accepted for backends and priority:
    ``EventMapping(event="task.*", backends=["metrics", "logs"], priority="high")``.
    Invalid values raise ``ValueError`` naming the field.
    """

    event: EventPattern = attrs.field(converter=_event_field)
    backends: tuple[Backend, ...] = attrs.field(
        default=(Backend.METRICS,), converter=_backends_field
    )
    enabled: bool = True
    sampling_rate: SamplingRate = attrs.field(default=SamplingRate(1.0), converter=_rate_field)
    priority: Priority = attrs.field(default=Priority.NORMAL, converter=_priority_field)
    metadata: Mapping[str, MetadataValue] = attrs.field(
        factory=dict, converter=_metadata, hash=False
    )

    @property
    def is_glob(self) -> bool:
        """Whether ``event`` is a glob rather than one name."""
        return not _GLOB_CHARS.isdisjoint(self.event)

    @property
    def active(self) -> bool:
        """Whether events can reach a backend: enabled, some backend, a rate above 0."""
        return self.enabled and bool(self.backends) and self.sampling_rate > 0

    def routes_to(self, backend: Backend | str) -> bool:
        """Whether this mapping (when active) sends events to ``backend``."""
        return self.active and parse_backend(backend) in self.backends

    def matches(self, name: str) -> bool:
        """Whether the event ``name`` falls under this mapping's name or glob."""
        return pattern_matches(self.event, name)


def pattern_matches(pattern: str, name: str) -> bool:
    """Whether the event ``name`` is ``pattern`` or matches it as a glob (case-sensitive)."""
    if _GLOB_CHARS.isdisjoint(pattern):
        return name == pattern
    return fnmatch.fnmatchcase(name, pattern)


_CACHE_LIMIT = 4096


class MappingTable:
    """An immutable set of mappings, one per pattern, with cached lookups.

    The mapping added last among those that match an event name applies; mapping a
    pattern again replaces its mapping and moves it to the end. :meth:`lookup`
    memoises answers for up to 4096 event names (more distinct names are resolved
    every time rather than grow the cache without bound).
    """

    def __init__(self, mappings: Iterable[EventMapping] = ()) -> None:
        by_pattern: dict[str, EventMapping] = {}
        for mapping in mappings:
            by_pattern.pop(mapping.event, None)
            by_pattern[mapping.event] = mapping
        self._mappings = tuple(by_pattern.values())
        self._exact: dict[str, tuple[int, EventMapping]] = {
            m.event: (i, m) for i, m in enumerate(self._mappings) if not m.is_glob
        }
        # Newest first, so the first match found is the one that applies.
        self._globs = tuple(
            (i, re.compile(fnmatch.translate(m.event)).match, m)
            for i, m in reversed(list(enumerate(self._mappings)))
            if m.is_glob
        )
        self._cache: dict[str, EventMapping | None] = {}

    @property
    def mappings(self) -> tuple[EventMapping, ...]:
        """Every mapping, in the order added (a replaced pattern moves to the end)."""
        return self._mappings

    def __len__(self) -> int:
        return len(self._mappings)

    def lookup(self, name: str) -> EventMapping | None:
        """Return the mapping that applies to the event ``name``, or None."""
        cache = self._cache
        try:
            return cache[name]
        except KeyError:
            pass
        exact = self._exact.get(name)
        found, after = (exact[1], exact[0]) if exact is not None else (None, -1)
        for index, match, mapping in self._globs:
            if index < after:
                break  # the exact mapping was added after every glob left
            if match(name):
                found = mapping
                break
        if len(cache) < _CACHE_LIMIT:
            cache[name] = found
        return found

    def with_mappings(self, mappings: Iterable[EventMapping]) -> MappingTable:
        """Return a new table: these mappings added to (or replacing) this table's."""
        return MappingTable((*self._mappings, *mappings))

    def without(self, patterns: Iterable[str]) -> MappingTable:
        """Return a new table without the mappings of these patterns."""
        dropped = set(patterns)
        return MappingTable(m for m in self._mappings if m.event not in dropped)
