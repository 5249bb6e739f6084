"""What the memcached store puts in an item: flags, biased integers, chunk heads, TTLs.

Every item carries one of these flags:

=========  ==================================================================
flag       the item's data
=========  ==================================================================
0          the value, as given
1          a signed 64-bit integer ``n`` as the decimal text of
           ``(n + 2**62) mod 2**64``
2          the head of a large value: where its chunks are (see :class:`Head`)
3          one chunk of a large value
=========  ==================================================================

Memcached's ``incr`` adds to an unsigned 64-bit integer modulo ``2**64`` and its
``decr`` stops at zero, so metricache only ever uses ``incr``: a negative amount
``a`` is added as ``2**64 + a``, and wrapping around is the subtraction. The signed
integer is kept with a bias of ``2**62`` because memcached (up to at least 1.6) can
refuse to ``incr`` a stored number of ``2**63`` or more: it then searches the item's
memory for a minus sign past the end of the digits, and finds one in whatever lies
there. With the bias every integer of magnitude below ``2**62`` (4.6e18) stays
clear of that; the store adds to the rare larger ones with ``gets``/``cas`` instead.
Leaving the signed range is seen by comparing the numbers before and after, and
undone exactly.

A value written with ``set`` that is the canonical decimal text of a signed 64-bit
integer is stored the same way, so ``get`` and ``incr`` agree on it as on Redis.
"""

from __future__ import annotations

import hashlib
import math
import time

import attrs
from metricache.errors import CorruptValue
from metricache.store import ttl_seconds

__all__ = [
    "BIAS",
    "FLAG_CHUNK",
    "FLAG_HEAD",
    "FLAG_INT",
    "FLAG_PLAIN",
    "MAX_ABSOLUTE_EXPTIME",
    "MAX_RELATIVE_EXPTIME",
    "WRAP",
    "Head",
    "as_int",
    "decode_int",
    "encode_int",
    "exptime",
    "signed",
    "unsigned",
]

FLAG_PLAIN = 0
FLAG_INT = 1
FLAG_HEAD = 2
FLAG_CHUNK = 3

WRAP = 2**64
"""Memcached's integers are unsigned 64-bit: ``incr`` wraps around at this value."""
BIAS = 2**62
"""Added to a signed integer (modulo ``2**64``) to store it as an unsigned one."""
_HEAD_MAGIC = b"MCCHUNKS1"
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

MAX_RELATIVE_EXPTIME = 30 * 24 * 3600
"""Memcached reads a larger expiry time as a Unix timestamp, not a number of seconds."""
MAX_ABSOLUTE_EXPTIME = 2**31 - 1
"""The largest expiry timestamp memcached keeps (it parses expiry times as int32)."""


def exptime(ttl: float, now: float | None = None) -> int:
    """Return the memcached expiry time that keeps an item for at least ``ttl`` seconds.

    Memcached's clock ticks in whole seconds, and an item may expire up to one second
    before its relative expiry time has fully elapsed, so the TTL is rounded up and
    one second is added. TTLs over 30 days become a Unix timestamp (server clock),
    capped at the largest timestamp memcached accepts.
    """
    seconds = ttl_seconds(ttl) + 1
    if seconds <= MAX_RELATIVE_EXPTIME:
        return seconds
    moment = time.time() if now is None else now
    return min(math.floor(moment) + seconds, MAX_ABSOLUTE_EXPTIME)


def as_int(value: bytes) -> int | None:
    """Return the integer ``value`` is the canonical decimal text of, if in range."""
    if not 0 < len(value) <= 20 or value[:1] not in b"-0123456789":
        return None
    try:
        number = int(value)
    except ValueError:
        return None
    if str(number).encode("ascii") != value or not _INT64_MIN <= number <= _INT64_MAX:
        return None
    return number


def encode_int(number: int) -> bytes:
    """Return the item data of a signed 64-bit integer (flag 1)."""
    return str((number + BIAS) % WRAP).encode("ascii")


def unsigned(data: bytes) -> int | None:
    """Return the unsigned number memcached reads in item data, or None.

    Memcached pads a number that ``incr`` made shorter with spaces.
    """
    digits = data.rstrip(b" ")
    if not 0 < len(digits) <= 20 or not digits.isdigit():
        return None
    number = int(digits)
    return number if number < WRAP else None


def signed(number: int) -> int:
    """Return the signed integer that the unsigned ``number`` (flag-1 data) stands for."""
    return (number - BIAS + 2**63) % WRAP - 2**63


def decode_int(key: bytes, data: bytes) -> int:
    """Return the signed integer of flag-1 item data; raise CorruptValue otherwise."""
    number = unsigned(data)
    if number is None:
        raise CorruptValue(f"{key!r} does not hold a 64-bit integer ({data[:30]!r})")
    return signed(number)


@attrs.frozen
class Head:
    """Where the chunks of a large value are, and how to check them.

    Chunks of one write share a random ``generation`` and are all written before the
    head that names them, so a reader never sees a head whose chunks are not (yet)
    there, and a rewrite never touches the chunks a reader may be fetching.
    """

    generation: bytes
    count: int
    length: int
    digest: bytes

    @staticmethod
    def digest_of(value: bytes) -> bytes:
        """Return the digest a head records of its value (BLAKE2b-128, hex)."""
        return hashlib.blake2b(value, digest_size=16).hexdigest().encode("ascii")

    def encode(self) -> bytes:
        """Return the head's item data (flag 2)."""
        return b"%s %s %d %d %s" % (
            _HEAD_MAGIC,
            self.generation,
            self.count,
            self.length,
            self.digest,
        )

    @classmethod
    def decode(cls, key: bytes, data: bytes) -> Head:
        """Parse head item data; raise CorruptValue on anything else."""
        parts = data.split(b" ")
        if (
            len(parts) != 5
            or parts[0] != _HEAD_MAGIC
            or not parts[1].isalnum()
            or not parts[2].isdigit()
            or not parts[3].isdigit()
            or len(parts[4]) != 32
        ):
            raise CorruptValue(f"{key!r} holds a malformed chunk head")
        count, length = int(parts[2]), int(parts[3])
        if count < 1:
            raise CorruptValue(f"{key!r} holds a chunk head without chunks")
        return cls(parts[1], count, length, parts[4])

    def join(self, key: bytes, chunks: list[bytes | None]) -> bytes | None:
        """Return the value from its chunks; None if one is missing (evicted).

        Raises CorruptValue when the chunks are there but do not add up to the value
        the head describes.
        """
        if any(c is None for c in chunks):
            return None
        value = b"".join(c for c in chunks if c is not None)
        if len(value) != self.length or self.digest_of(value) != self.digest:
            raise CorruptValue(f"{key!r}: the chunks do not match their head")
        return value
