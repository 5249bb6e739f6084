"""Where metricache keeps what in a store: key names, stored parts and value encodings.

This module is the one place that names keys and the parts a series is stored as;
stores (the Redis scripts included) receive these names, they never spell them.
Every key starts with the namespace (``metricache`` by default), most of them inside a
hash tag (below). Key names are ASCII without spaces or control bytes: family names
follow the Prometheus rules, and label values never appear in a key (a series is named
by a hash of its family and labels).

==================================  ====================================  ===============
key                                 holds                                 TTL
==================================  ====================================  ===============
``{NS}:epoch``                      random token naming the store's       retention
                                    current life (a flush loses it)
``{NS}:fam:GEN``                    map family -> metadata JSON           generation TTL
``{NS}:idx:FAMILY:GEN``             map series id -> label values JSON    generation TTL
``{NS}:inst:GEN``                   map instance key -> instance id       generation TTL
``{NS/SH}:s:SID``                   one series: its *life* and, on a      retention, reset
                                    store with maps of integers (Redis),  by the holders'
                                    its parts and sequence *traces*       refresh
``{NS/SH}:s:SID:PART``              one integer of a series (stores       as the series
                                    without such maps)
``{NS/SH}:epoch``                   the shard's marker: the store epoch   retention
                                    it was written in (sharded stores)
``{NS:g:IKEY}``                     an instance's header: ``@`` -> id,    liveness TTL
                                    ``#`` -> its gauge page layout
``{NS:g:IKEY}:LAYOUT:N``            gauge page N: series id ->            retention
                                    ``[value, stamp]``
``NS:local:IKEY``                   one instance's whole state (JSON)     local state TTL
``NS:local-instances``              map instance key -> instance id       local state TTL
==================================  ====================================  ===============

The part in braces is a Redis Cluster *hash tag*: keys with the same tag live in the
same slot, so a store spread over several servers keeps them together (Redis Cluster
by the tag's slot, a memcached fleet by hashing the tag) and can change them in one
atomic call. There are three kinds of tags:

* ``{NS}``, the *control* tag: the epoch and every registration map, which change
  together (a store that loses them loses its epoch too);
* ``{NS/SH}``, a *shard*: the series whose id starts with the two hex digits ``SH``
  (:data:`SHARDS` shards, spread over the slots), with the shard's marker;
* ``{NS:g:IKEY}``, one instance's gauges: its header and its pages.

A counter is two integers, whole units (``i``) and billionths (``f``), so sums are
exact whatever order instances add them in; a histogram keeps one integer per bucket
(``b0`` ...; its count is their sum) and its sum as ``si`` and ``sf``
(:func:`value_parts`).

A series lives as a whole: its parts and its life expire together, ``retention``
after the last refresh by any instance that holds it. The *life* (field ``@``, or the
value of ``NS:s:SID`` on stores without maps) is a token the instance that created
the series chose; an instance remembers the life its contributions went into, so a
series that expired and was created again is never taken for the old one. A *trace*
(field ``~TOKEN``) records the last batch of one process incarnation that wrote the
series, so a batch re-sent after any delay is recognised series by series (on Redis
the trace's field is ``~TOKEN:LIFE``: it vouches only for the life it was written in).

Registrations (``fam``, ``idx``, ``inst``) live in *generations* of
:data:`GENERATION` seconds. An instance registers what it holds once per generation;
readers read the generations that cover their retention window (plus one on each
side), and registrations of series nobody holds any more disappear with their
generation: nothing needs pruning, and the cost of a read follows the series alive in
the retention window.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Sequence
from typing import Any

import attrs

from metricache.errors import CorruptValue
from metricache.snapshot import GaugeMerge, MetricType

__all__ = [
    "COUNTER_PARTS",
    "FRACTION_SCALE",
    "GENERATION",
    "INT64_MAX",
    "LIFE_FIELD",
    "SHARDS",
    "TRACE_PREFIX",
    "FamilyMeta",
    "Keyspace",
    "LifeRecord",
    "decode_labels",
    "encode_labels",
    "hash_tag",
    "join_fixed",
    "series_id",
    "split_fixed",
    "value_parts",
]

GENERATION = 300.0
"""Seconds per registration generation. Fixed, so that every writer and reader
numbers generations alike whatever retention each was configured with."""
FRACTION_SCALE = 1_000_000_000
INT64_MAX = 2**63 - 1

LIFE_FIELD = "@"
"""The field of a series map (or the content of a series key) that holds its life."""
TRACE_PREFIX = "~"
"""Prefix of the field of a series map that holds one incarnation's last batch number."""

SHARDS = 256
"""How many shards the series are spread over: a series' shard is the first two hex
digits of its id (:meth:`Keyspace.shard`)."""

COUNTER_PARTS = ("i", "f")
_HISTOGRAM_PARTS: dict[int, tuple[str, ...]] = {}


def value_parts(kind: MetricType, nbuckets: int = 0) -> tuple[str, ...]:
    """Return the names of the integers a series of this type is stored as.

    Counters: ``("i", "f")``; histograms: ``("b0", ..., "b<n-1>", "si", "sf")`` for
    ``nbuckets`` buckets; gauges: none (they live in their instance's pages). The
    tuples are shared, one per layout.
    """
    if kind is MetricType.COUNTER:
        return COUNTER_PARTS
    if kind is MetricType.HISTOGRAM:
        parts = _HISTOGRAM_PARTS.get(nbuckets)
        if parts is None:
            parts = (*(f"b{k}" for k in range(nbuckets)), "si", "sf")
            _HISTOGRAM_PARTS[nbuckets] = parts
        return parts
    return ()


_TOKEN = re.compile(r"[0-9A-Za-z._-]{1,64}")


@attrs.define
class LifeRecord:
    """The content of a series key on a store without maps: its life and traces.

    Encoded as the life token, then one ``TOKEN SEQ`` line per trace (only stores
    that apply batches atomically and exactly once keep traces).
    """

    life: str
    traces: dict[str, int] = attrs.field(factory=dict)

    def encode(self) -> bytes:
        """Return the bytes stored under the series key."""
        lines = [self.life, *(f"{token} {seq}" for token, seq in self.traces.items())]
        return "\n".join(lines).encode("ascii")

    @classmethod
    def decode(cls, key: bytes, raw: bytes) -> LifeRecord:
        """Parse what :meth:`encode` wrote; raise CorruptValue on anything else."""
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            raise CorruptValue(f"{key!r} does not hold a series life (not ASCII)") from None
        life, *rest = text.split("\n")
        if not _TOKEN.fullmatch(life):
            raise CorruptValue(f"{key!r} does not hold a series life ({raw[:30]!r})")
        traces: dict[str, int] = {}
        for line in rest:
            token, _, seq = line.partition(" ")
            if not _TOKEN.fullmatch(token) or not seq.isdigit() or len(seq) > 19:
                raise CorruptValue(f"{key!r} holds a malformed trace ({line[:40]!r})")
            traces[token] = int(seq)
        return cls(life, traces)


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
            # A summary bridged as a histogram has one bucket only: +Inf.
            if kind is MetricType.HISTOGRAM and (not buckets or buckets[-1] != math.inf):
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

    def value_parts(self) -> tuple[str, ...]:
        """Return the names of the integers a series of this family is stored as."""
        return value_parts(self.type, len(self.buckets))


def _check_namespace(instance: Keyspace, attribute: object, value: str) -> None:
    if not value or any(c in value for c in "{} \r\n\t"):
        raise ValueError(
            f"a namespace must be non-empty, without braces or whitespace, got {value!r} "
            "(braces would change which keys Redis Cluster keeps together)"
        )


@attrs.frozen
class Keyspace:
    """Key names for one namespace and retention window."""

    namespace: str = attrs.field(default="metricache", validator=_check_namespace)
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

    # -- the control tag: the epoch and the registrations -------------------------------

    @property
    def control_tag(self) -> str:
        """The hash tag of the epoch and the registration maps (braces included)."""
        return "{" + self.namespace + "}"

    def epoch(self) -> bytes:
        """The key of the store's epoch token."""
        return f"{self.control_tag}:epoch".encode()

    def families(self, gen: int) -> bytes:
        """The key of a generation's families map."""
        return f"{self.control_tag}:fam:{gen}".encode()

    def index(self, family: str, gen: int) -> bytes:
        """The key of a generation's series index of one family."""
        return f"{self.control_tag}:idx:{family}:{gen}".encode()

    def instances(self, gen: int) -> bytes:
        """The key of a generation's instance registry."""
        return f"{self.control_tag}:inst:{gen}".encode()

    # -- shards: the series -------------------------------------------------------------

    @staticmethod
    def shard(sid: str) -> str:
        """Return the shard of a series: the first two hex digits of its id."""
        return sid[:2]

    @staticmethod
    def shard_names() -> list[str]:
        """Return the name of every shard (``00`` to ``ff``)."""
        return [f"{n:02x}" for n in range(SHARDS)]

    def shard_tag(self, shard: str) -> str:
        """The hash tag of a shard's keys (braces included)."""
        return "{" + self.namespace + "/" + shard + "}"

    def shard_prefix(self, shard: str) -> str:
        """What the key of every series of ``shard`` starts with (the series id follows)."""
        return f"{self.shard_tag(shard)}:s:"

    def shard_epoch(self, shard: str) -> bytes:
        """The key of a shard's marker: the epoch its series were written in."""
        return f"{self.shard_tag(shard)}:epoch".encode()

    def series(self, sid: str) -> bytes:
        """The key of one series: its map, or on stores without maps its life record."""
        return f"{{{self.namespace}/{sid[:2]}}}:s:{sid}".encode()

    def part(self, sid: str, part: str) -> bytes:
        """The key of one integer of a series, on stores without maps of integers."""
        return f"{{{self.namespace}/{sid[:2]}}}:s:{sid}:{part}".encode()

    # -- one instance's gauges ----------------------------------------------------------

    def instance(self, ikey: str) -> bytes:
        """The key of an instance's header (its liveness marker and gauge layout)."""
        return f"{{{self.namespace}:g:{ikey}}}".encode()

    def gauge_page(self, ikey: str, layout: str, page: int) -> bytes:
        """The key of one page of an instance's gauges in page layout ``layout``."""
        return f"{{{self.namespace}:g:{ikey}}}:{layout}:{page}".encode()

    # -- local_only ---------------------------------------------------------------------

    def local(self, ikey: str) -> bytes:
        """The key of one instance's whole state (local_only strategy)."""
        return f"{self.namespace}:local:{ikey}".encode()

    def local_instances(self) -> bytes:
        """The key of the map of instances that saved a view (local_only strategy)."""
        return f"{self.namespace}:local-instances".encode()


def hash_tag(key: bytes) -> bytes:
    """Return the part of ``key`` that decides where it lives, as Redis Cluster reads it.

    The text between the first ``{`` and the first ``}`` after it, when not empty;
    otherwise the whole key.
    """
    start = key.find(b"{")
    if start >= 0:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key
