"""The layout of one file of the file store: a checked header, the key, the value.

=============  =======  ==========================================================
field          bytes    content
=============  =======  ==========================================================
magic          8        ``MCFILE1`` and a newline
expires        8        Unix time (wall clock) after which the value is absent,
                        big-endian IEEE 754 double
key length     4        big-endian unsigned
value length   8        big-endian unsigned
digest         16       BLAKE2b-128 of every field above and of key and value
key            ...      the key, so a file always says whose value it holds
value          ...
=============  =======  ==========================================================

A file that is shorter or longer than its lengths say, or whose digest does not
match, was not written whole by this store: :func:`decode` rejects it.
"""

from __future__ import annotations

import hashlib
import math
import struct

import attrs
from metricache.errors import CorruptValue

__all__ = ["HEADER_SIZE", "MAGIC", "Record", "decode", "encode"]

MAGIC = b"MCFILE1\n"
_FIELDS = struct.Struct(">8sdIQ")
_DIGEST = 16
HEADER_SIZE = _FIELDS.size + _DIGEST


@attrs.frozen
class Record:
    """What one file holds."""

    key: bytes
    value: bytes
    expires: float

    def expired(self, now: float) -> bool:
        """Return whether the value is absent at Unix time ``now``."""
        return self.expires <= now


def _digest(fields: bytes, key: bytes, value: bytes) -> bytes:
    h = hashlib.blake2b(fields, digest_size=_DIGEST)
    h.update(key)
    h.update(value)
    return h.digest()


def encode(record: Record) -> bytes:
    """Return the bytes of a file holding ``record``."""
    fields = _FIELDS.pack(MAGIC, record.expires, len(record.key), len(record.value))
    return b"".join((fields, _digest(fields, record.key, record.value), record.key, record.value))


def decode(data: bytes) -> Record:
    """Parse a file's bytes; raise CorruptValue unless it was written whole by :func:`encode`."""
    if len(data) < HEADER_SIZE:
        raise CorruptValue(f"a file of {len(data)} bytes is shorter than a header")
    fields = data[: _FIELDS.size]
    magic, expires, key_len, value_len = _FIELDS.unpack(fields)
    if magic != MAGIC:
        raise CorruptValue("a file does not start with the file store's magic bytes")
    if len(data) != HEADER_SIZE + key_len + value_len:
        raise CorruptValue(
            f"a file holds {len(data)} bytes, its header says {HEADER_SIZE + key_len + value_len}"
        )
    key = data[HEADER_SIZE : HEADER_SIZE + key_len]
    value = data[HEADER_SIZE + key_len :]
    if _digest(fields, key, value) != data[_FIELDS.size : HEADER_SIZE] or math.isnan(expires):
        raise CorruptValue("a file's digest does not match its content")
    return Record(key, value, expires)
