"""Where metricache keeps what in a store: key names and value encodings.

Every key starts with the namespace (``metricache`` by default). Key names are ASCII
without spaces or control bytes: family names follow the Prometheus rules, and label
values never appear in a key (a series is named by a hash of its family and labels).

==================================  ====================================  ===============
key                                 holds                                 TTL
==================================  ====================================  ===============
``NS:epoch``                        random token naming the store's       retention
                                    current life (a flush loses it)
``NS:fam:GEN``                      map family -> metadata JSON           generation TTL
``NS:idx:FAMILY:GEN``               map series id -> label values JSON    generation TTL
``NS:inst:GEN``                     map instance key -> instance id       generation TTL
``NS:frac:GEN``                     map family -> "1" when billionths     generation TTL
                                    were sent (else ``f`` parts are 0)
``NS:g:IKEY``                       map series id -> ``[value, stamp]``   liveness TTL
                                    plus ``@`` -> instance id and time
``NS:v:SID:PART``                   signed 64-bit integer                 retention
``NS:local:IKEY``                   one instance's whole state (JSON)     local state TTL
``NS:local-instances``              map instance key -> instance id       local state TTL
``NS:seq:TOKEN``                    last batch applied for an incarnation retention
==================================  ====================================  ===============

Counters and histogram sums are kept in fixed point as two integers: whole units
(``i``) and billionths (``f``), so sums are exact whatever order instances add them
in. A histogram keeps one integer per bucket (``b0`` ...); its count is their sum.

Registrations (``fam``, ``idx``, ``inst``, ``frac``) live in *generations* of
:data:`GENERATION` seconds. An instance registers a series once per generation in
which it sends something for it; readers read the generations that cover their
retention window (plus one on each side), and registrations of series nobody touches
any more disappear with their generation: nothing needs pruning, and the cost of a
read follows the series alive in the retention window.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from typing import Any

import attrs

from metricache.errors import CorruptValue
from metricache.snapshot import GaugeMerge, MetricType

__all__ = [
    "FRACTION_SCALE",
    "GENERATION",
    "INT64_MAX",
    "FamilyMeta",
    "Keyspace",
    "decode_labels",
    "encode_labels",
    "join_fixed",
    "series_id",
    "split_fixed",
]

GENERATION = 300.0
"""Seconds per registration generation. Fixed, so that every writer and reader
numbers generations alike whatever retention each was configured with."""
FRACTION_SCALE = 1_000_000_000
INT64_MAX = 2**63 - 1


def series_id(family: str, labels: Sequence[str]) -> str:
    """Return the store name of a series: a hash of its family and label values."""
    raw = json.dumps([family, list(labels)], ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(raw.encode("utf-8"), digest_size=12).hexdigest()


def split_fixed(value: float) -> tuple[int, int]:
    """Return ``(whole units, billionths)`` of a finite float, billionths in [0, 1e9)."""
    whole = math.floor(value)
    nanos = round((value - whole) * FRACTION_SCALE)
    if nanos >= FRACTION_SCALE:
        whole += 1
        nanos -= FRACTION_SCALE
    return int(whole), int(nanos)


def join_fixed(whole: int, nanos: int) -> float:
    """Return the float that ``(whole units, billionths)`` stand for."""
    extra, nanos = divmod(nanos, FRACTION_SCALE)
    return float(whole + extra) + nanos / FRACTION_SCALE


def encode_labels(labels: Sequence[str]) -> str:
    """Encode label values for an index entry (a JSON array of strings)."""
    return json.dumps(list(labels), ensure_ascii=False, separators=(",", ":"))


def decode_labels(text: str) -> tuple[str, ...]:
    """Decode an index entry; raise CorruptValue unless it is a list of strings."""
    try:
        value = json.loads(text)
    except ValueError:
        raise CorruptValue("an index entry is not JSON") from None
    if isinstance(value, dict) and not value:  # an empty array written by Lua's cjson
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CorruptValue("an index entry is not a list of label values")
    return tuple(value)


def _bound_text(bound: float) -> str | float:
    return "+Inf" if bound == math.inf else bound


def _bound_value(value: Any) -> float:
    if value == "+Inf":
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CorruptValue(f"a bucket bound is not a number: {value!r}")
    return float(value)


@attrs.frozen
class FamilyMeta:
    """What a reader needs to know about a family besides its samples."""

    name: str
    type: MetricType
    documentation: str
    labelnames: tuple[str, ...]
    unit: str = ""
    buckets: tuple[float, ...] = ()
    merge: GaugeMerge | None = None

    def encode(self) -> str:
        """Return the JSON text stored in the families map."""
        data: dict[str, Any] = {
            "type": self.type.value,
            "help": self.documentation,
            "labels": list(self.labelnames),
        }
        if self.unit:
            data["unit"] = self.unit
        if self.buckets:
            data["buckets"] = [_bound_text(b) for b in self.buckets]
        if self.merge is not None:
            data["merge"] = self.merge.value
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def decode(cls, name: str, text: str) -> FamilyMeta:
        """Parse what :meth:`encode` wrote; raise CorruptValue on anything else."""
        try:
            data = json.loads(text)
            kind = MetricType(data["type"])
            labels = data.get("labels") or []
            if isinstance(labels, dict):
                labels = []
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise CorruptValue(f"family {name!r}: labels are not a list of names")
            buckets = tuple(_bound_value(b) for b in (data.get("buckets") or []))
            if kind is MetricType.HISTOGRAM and (len(buckets) < 2 or buckets[-1] != math.inf):
                raise CorruptValue(f"family {name!r}: histogram without valid buckets")
            merge = GaugeMerge(data["merge"]) if data.get("merge") else None
            help_text = data.get("help", "")
            unit = data.get("unit", "")
            if not isinstance(help_text, str) or not isinstance(unit, str):
                raise CorruptValue(f"family {name!r}: help or unit is not text")
        except CorruptValue:
            raise
        except (ValueError, KeyError, TypeError, AttributeError):
            raise CorruptValue(f"family {name!r}: metadata is not valid") from None
        return cls(name, kind, help_text, tuple(labels), unit, buckets, merge)

    def value_parts(self) -> list[str]:
        """Return the suffixes of the integer keys a series of this family uses."""
        if self.type is MetricType.COUNTER:
            return ["i", "f"]
        if self.type is MetricType.HISTOGRAM:
            return [f"b{k}" for k in range(len(self.buckets))] + ["si", "sf"]
        return []


@attrs.frozen
class Keyspace:
    """Key names for one namespace and retention window."""

    namespace: str = "metricache"
    retention: float = 300.0

    @property
    def prefix(self) -> str:
        """The namespace followed by ``:``."""
        return self.namespace + ":"

    def generation(self, now: float | None = None) -> int:
        """Return the registration generation of ``now`` (wall clock)."""
        moment = time.time() if now is None else now
        return int(moment // GENERATION)

    def read_generations(self, now: float | None = None) -> list[int]:
        """Return the generations a reader consults.

        They cover the retention window before ``now`` plus one generation on each
        side (for clocks that disagree): a series whose values are still alive was
        registered in one of them.
        """
        moment = time.time() if now is None else now
        first = self.generation(moment - self.retention) - 1
        return list(range(first, self.generation(moment) + 2))

    @property
    def generation_ttl(self) -> float:
        """How long a generation's registrations live after their last write."""
        return self.retention + 2 * GENERATION + 60.0

    def epoch(self) -> bytes:
        """The key of the store's epoch token."""
        return f"{self.namespace}:epoch".encode()

    def families(self, gen: int) -> bytes:
        """The key of a generation's families map."""
        return f"{self.namespace}:fam:{gen}".encode()

    def index(self, family: str, gen: int) -> bytes:
        """The key of a generation's series index of one family."""
        return f"{self.namespace}:idx:{family}:{gen}".encode()

    def fractional(self, gen: int) -> bytes:
        """The key of a generation's map of families that sent billionths."""
        return f"{self.namespace}:frac:{gen}".encode()

    def instances(self, gen: int) -> bytes:
        """The key of a generation's instance registry."""
        return f"{self.namespace}:inst:{gen}".encode()

    def gauges(self, ikey: str) -> bytes:
        """The key of one instance's gauge map (also its liveness marker)."""
        return f"{self.namespace}:g:{ikey}".encode()

    def value(self, sid: str, part: str) -> bytes:
        """The key of one integer of a counter or histogram series."""
        return f"{self.namespace}:v:{sid}:{part}".encode()

    def local(self, ikey: str) -> bytes:
        """The key of one instance's whole state (local_only strategy)."""
        return f"{self.namespace}:local:{ikey}".encode()

    def local_instances(self) -> bytes:
        """The key of the map of instances that saved a view (local_only strategy)."""
        return f"{self.namespace}:local-instances".encode()

    def sequence(self, token: str) -> bytes:
        """The key of the last batch number applied for a process incarnation."""
        return f"{self.namespace}:seq:{token}".encode()
