"""The file store: one directory, one file per key, written atomically.

Every write goes to a temporary file in the same directory, is flushed to disk, and
replaces the key's file with ``os.replace``, so a reader sees the old file or the
new one, never half of one. Writers of the same key (threads, or processes of one
host) take that key's lock first: a thread lock and an ``flock`` on one of a fixed
set of lock files, so read-modify-write (``merge_map``, ``touch``) loses nothing.
Reads take no lock.

Expired files count as absent and are removed when met, and by a sweep at start
and every ``sweep_interval`` seconds. A file that was not written whole by this
store (a crash on a file system that lost the data, a stray file) is reported
through ``on_corrupt``, removed, and treated as absent: it never raises.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import attrs
from metricache.config import Seconds
from metricache.errors import CorruptValue, StoreError, StoreUnavailable
from metricache.store import Store, decode_map, encode_map, ttl_ms

from metricache_file import records
from metricache_file.records import Record

__all__ = ["FileOptions", "FileStore", "file_name"]

log = logging.getLogger("metricache.file")

VALUE_SUFFIX = ".mcv"
TEMP_SUFFIX = ".tmp"
LOCKS = ".locks"
_STRIPES = 64  # lock files: a fixed number, whatever the number of keys
_STALE_TEMP = 600.0  # seconds after which a temporary file is a crashed writer's
_READABLE = re.compile(rb"[^A-Za-z0-9_.-]+")
_LOCK_TIMEOUT = Seconds(10.0)
_SWEEP_INTERVAL = Seconds(60.0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def file_name(key: bytes) -> str:
    """Return the name of the file that holds ``key``.

    A readable part (the key with anything but letters, digits, ``.``, ``_`` and
    ``-`` replaced by ``_``, at most 64 characters) for people looking at the
    directory, then the BLAKE2b-160 hex digest of the key, which alone decides.
    """
    readable = _READABLE.sub(b"_", key)[:64].decode("ascii")
    digest = hashlib.blake2b(key, digest_size=20).hexdigest()
    return f"{readable}.{digest}{VALUE_SUFFIX}"


def _check_path(_instance: object, _attribute: object, value: str) -> None:
    if not value.strip():
        raise ValueError("expected the path of a directory, got an empty string")


@attrs.frozen(kw_only=True)
class FileOptions:
    """Options of the file store.

    ``path``
        The directory that holds the files (required). It is created with mode
        0700 if missing; every file in it is created with mode 0600. ``~`` is
        expanded. Processes of one host may share it; each instance keeps its own
        view there (the ``local_only`` strategy).
    ``fsync``
        Flush every write to disk before it replaces the old file, and the
        directory after (default true). Without it a power loss may lose the last
        writes, but never leaves a half-written file in place of a whole one.
    ``lock_timeout``
        Seconds to wait for the lock of a key another writer holds (default 10)
        before the operation fails with StoreUnavailable.
    ``sweep_interval``
        Seconds between sweeps that remove expired files (default 60; one sweep
        runs when the store opens).
    """

    path: str = attrs.field(validator=_check_path)
    fsync: bool = True
    lock_timeout: Seconds = _LOCK_TIMEOUT
    sweep_interval: Seconds = _SWEEP_INTERVAL


class _Stripe:
    """One lock file and the thread lock that goes with it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.thread_lock = threading.Lock()
        self.fd = -1

    def close(self) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = -1


class FileStore(Store):
    """Keys and values in files of one directory; survives restarts; one host only."""

    name = "file"
    capabilities = frozenset()
    options_class = FileOptions

    def __init__(self, options: FileOptions) -> None:
        super().__init__(options)
        self.options: FileOptions
        self.directory = Path(os.path.expanduser(self.options.path)).absolute()
        self._make_directory(self.directory)
        self._make_directory(self.directory / LOCKS)
        self._pid = os.getpid()
        self._stripes = [_Stripe(self.directory / LOCKS / f"{n:02x}.lock") for n in range(_STRIPES)]
        self._next_sweep = 0.0
        self.sweep()

    @staticmethod
    def _make_directory(path: Path) -> None:
        try:
            path.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            if not path.is_dir():
                raise StoreError(f"{path} exists and is not a directory") from None
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                # Left as it is (it is the user's directory), but others could read,
                # plant or remove metric files in it: say so once, when opening.
                log.warning(
                    "%s is open to other users (mode %03o); metricache creates its own "
                    "directories as 0700",
                    path,
                    mode,
                )
            return
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {path}: {exc}") from exc
        path.chmod(0o700)  # the mode given to mkdir is reduced by the umask

    # -- life cycle ---------------------------------------------------------------------

    def describe(self) -> str:
        """Return the directory."""
        return f"file {self.directory}"

    def ping(self) -> None:
        """Raise StoreUnavailable unless the directory can be listed and written."""
        if not os.access(self.directory, os.R_OK | os.W_OK | os.X_OK):
            raise StoreUnavailable(f"{self.directory} is not readable and writable")

    def close(self) -> None:
        """Close the lock files."""
        for stripe in self._stripes:
            stripe.close()

    def after_fork(self) -> None:
        """Take new lock files in a forked child.

        An ``flock`` belongs to an open file, which a child shares with its parent:
        with the inherited descriptors the two would not exclude each other.
        """
        for stripe in self._stripes:
            # Closing the child's copy leaves the parent's lock, if it holds one, alone.
            stripe.close()
            stripe.thread_lock = threading.Lock()
        self._pid = os.getpid()

    # -- files ----------------------------------------------------------------------------

    def _path(self, name: str) -> Path:
        return self.directory / name

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        """Hold the lock of the key whose file is ``name``, against threads and processes."""
        if self._pid != os.getpid():
            self.after_fork()
        # The last hex digits of the key's digest pick its lock file.
        digits = name[-len(VALUE_SUFFIX) - 4 : -len(VALUE_SUFFIX)]
        stripe = self._stripes[int(digits, 16) % _STRIPES]
        timeout = self.options.lock_timeout
        if not stripe.thread_lock.acquire(timeout=timeout):
            raise StoreUnavailable(f"{self.describe()}: a thread holds {name}'s lock")
        try:
            if stripe.fd < 0:
                try:
                    stripe.fd = os.open(stripe.path, os.O_RDWR | os.O_CREAT | _CLOEXEC, 0o600)
                except OSError as exc:
                    raise StoreUnavailable(f"cannot open {stripe.path}: {exc}") from exc
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(stripe.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise StoreUnavailable(
                            f"{self.describe()}: another process holds {name}'s lock"
                        ) from None
                    time.sleep(0.002)
            try:
                yield
            finally:
                fcntl.flock(stripe.fd, fcntl.LOCK_UN)
        finally:
            stripe.thread_lock.release()

    def _read(self, name: str, key: bytes) -> tuple[Record | None, bytes | None]:
        """Return ``(record, bytes)`` of file ``name``.

        ``(None, None)`` when there is no file; ``(None, bytes)`` when the file was
        not written whole by this store or holds another key (reported through
        ``on_corrupt``).
        """
        path = self._path(name)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read {path}: {exc}") from exc
        try:
            record = records.decode(data)
            if record.key != key:
                raise CorruptValue(f"the file holds the key {record.key!r}, not {key!r}")
        except CorruptValue as exc:
            self.on_corrupt(CorruptValue(f"ignoring {path}: {exc}"))
            return None, data
        return record, data

    def _discard(self, name: str, seen: bytes | None) -> None:
        """Remove file ``name`` if it still holds ``seen`` (an expired or corrupt file)."""
        path = self._path(name)
        with self._locked(name):
            try:
                if seen is None or path.read_bytes() == seen:
                    path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot remove %s: %s", path, exc)

    def _live(self, name: str, key: bytes, now: float) -> Record | None:
        """Return the live record of file ``name`` (the caller holds its lock)."""
        record, _ = self._read(name, key)
        if record is None or record.expired(now):
            return None
        return record

    def _write(self, name: str, record: Record) -> None:
        """Replace file ``name`` atomically (the caller holds its lock)."""
        path = self._path(name)
        temp = self._path(f".{name}.{os.getpid()}.{secrets.token_hex(4)}{TEMP_SUFFIX}")
        data = records.encode(record)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _CLOEXEC, 0o600)
            try:
                os.fchmod(fd, 0o600)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self.options.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise StoreUnavailable(f"cannot write {path}: {exc}") from exc
        if self.options.fsync:
            self._sync_directory()

    def _sync_directory(self) -> None:
        """Make the rename durable (next to an fsync, opening the directory costs nothing)."""
        try:
            fd = os.open(self.directory, os.O_RDONLY | _CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            log.warning("cannot flush the directory %s: %s", self.directory, exc)

    def _maybe_sweep(self) -> None:
        # Called with no lock held: the sweep takes the locks of the files it removes.
        if time.monotonic() >= self._next_sweep:
            self.sweep()

    def sweep(self) -> int:
        """Remove expired files, files not written whole, and crashed writers' temp files.

        Returns how many files were removed. Runs when the store opens and then at
        most every ``sweep_interval`` seconds, from a write.
        """
        self._next_sweep = time.monotonic() + self.options.sweep_interval
        removed = 0
        now = time.time()
        try:
            entries = list(os.scandir(self.directory))
        except OSError as exc:
            log.warning("cannot list %s: %s", self.directory, exc)
            return 0
        for entry in entries:
            try:
                if entry.name.endswith(TEMP_SUFFIX) and entry.name.startswith("."):
                    if now - entry.stat().st_mtime > _STALE_TEMP:
                        os.unlink(entry.path)
                        removed += 1
                    continue
                if not entry.name.endswith(VALUE_SUFFIX) or not entry.is_file():
                    continue
                data = Path(entry.path).read_bytes()
            except OSError:
                continue  # gone meanwhile, or not ours to judge
            try:
                record = records.decode(data)
                if file_name(record.key) != entry.name:
                    raise CorruptValue(f"the file holds the key {record.key!r}")
            except CorruptValue as exc:
                self.on_corrupt(CorruptValue(f"ignoring {entry.path}: {exc}"))
                self._discard(entry.name, data)
                removed += 1
                continue
            if record.expired(now):
                self._discard(entry.name, data)
                removed += 1
        return removed

    # -- basics -------------------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        """Return the value in the key's file, unless absent or expired."""
        name = file_name(key)
        now = time.time()
        record, data = self._read(name, key)
        if data is None:
            return None
        if record is None or record.expired(now):
            self._discard(name, data)
            return None
        return record.value

    def set(self, key: bytes, value: bytes, ttl: float) -> None:
        """Write the key's file atomically."""
        name = file_name(key)
        record = Record(bytes(key), bytes(value), time.time() + ttl_ms(ttl) / 1000)
        with self._locked(name):
            self._write(name, record)
        self._maybe_sweep()

    def set_many(self, items: Mapping[bytes, bytes], ttl: float) -> None:
        """Write every key's file (each atomically)."""
        for key, value in items.items():
            self.set(key, value, ttl)

    def delete(self, key: bytes) -> bool:
        """Remove the key's file; return whether it held a live value."""
        name = file_name(key)
        with self._locked(name):
            record = self._live(name, key, time.time())
            try:
                self._path(name).unlink()
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise StoreUnavailable(f"cannot remove {self._path(name)}: {exc}") from exc
            return record is not None

    def touch(self, key: bytes, ttl: float) -> bool:
        """Rewrite the key's file with a new expiry time; False if absent or expired."""
        name = file_name(key)
        with self._locked(name):
            now = time.time()
            record = self._live(name, key, now)
            if record is None:
                return False
            self._write(name, Record(record.key, record.value, now + ttl_ms(ttl) / 1000))
        self._maybe_sweep()
        return True

    # -- maps -----------------------------------------------------------------------------

    def merge_map(
        self, key: bytes, entries: Mapping[str, str], ttl: float, *, only_new: bool = False
    ) -> None:
        """Add entries to the map under ``key`` while holding its lock (nothing is lost)."""
        name = file_name(key)
        with self._locked(name):
            now = time.time()
            record = self._live(name, key, now)
            raw = record.value if record is not None else None
            merged = self.merged_map(key, raw, entries, only_new=only_new)
            if merged is None:  # nothing new: the write still resets the TTL
                merged = decode_map(key, raw)
            self._write(name, Record(bytes(key), encode_map(merged), now + ttl_ms(ttl) / 1000))
        self._maybe_sweep()
