"""Memcached key names: any bytes in, a key the text protocol cannot misread out.

Memcached keys are at most 250 bytes of printable ASCII without spaces; anything
else (a space, a line break, a control byte, a non-ASCII byte, an over-long key) would
either be refused or, worse, split the command line into another command. A key that
is plain printable ASCII of at most 250 bytes is used as it is; every other key
becomes ``~h:`` and the BLAKE2b-256 hex digest of its bytes. Keys the store makes
for itself (the chunks of large values) start with ``~`` too, so a key that arrives
starting with ``~`` is always hashed: an application key can never equal a derived
one, and two different keys map to the same memcached key only through a BLAKE2b
collision.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["MAX_KEY_LENGTH", "chunk_key", "is_plain", "safe_key"]

MAX_KEY_LENGTH = 250
"""The longest key memcached accepts, in bytes."""

# 0x21..0x7d for the first byte (no "~", which marks derived keys), 0x21..0x7e after.
_PLAIN = re.compile(rb"[!-}][!-~]{0,%d}" % (MAX_KEY_LENGTH - 1))


def is_plain(key: bytes) -> bool:
    """Return whether ``key`` is used as it is (printable ASCII, 1 to 250 bytes)."""
    return _PLAIN.fullmatch(key) is not None


def safe_key(key: bytes) -> bytes:
    """Return the memcached key that stands for ``key``."""
    if _PLAIN.fullmatch(key) is not None:
        return key
    return b"~h:" + hashlib.blake2b(key, digest_size=32).hexdigest().encode("ascii")


def chunk_key(generation: bytes, index: int) -> bytes:
    """Return the key of chunk ``index`` of a large value written as ``generation``."""
    return b"~c:%s:%d" % (generation, index)
