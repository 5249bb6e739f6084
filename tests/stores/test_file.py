"""The file store on a real directory: atomic writes, modes, expiry, corrupt files,
locking across threads, forks and processes, and counters resumed after a restart."""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import metricache
import pytest
from metricache.errors import CorruptValue, StoreError
from metricache.sync.strategy import Strategy, select_strategy
from metricache_file import FileOptions, FileStore, records
from metricache_file.store import file_name

from tests.stores.workers import run_workers


class RecordingStore(FileStore):
    """The file store, keeping what it reports through ``on_corrupt``."""

    def __init__(self, options: FileOptions) -> None:
        self.reported: list[str] = []
        super().__init__(options)

    def on_corrupt(self, error: CorruptValue) -> None:
        self.reported.append(str(error))


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    return tmp_path / "store"


def open_store(directory: Path, **options: object) -> RecordingStore:
    return RecordingStore(FileOptions(path=str(directory), **options))  # type: ignore[arg-type]


@pytest.fixture
def umask_zero() -> Iterator[None]:
    """Run with a umask that hides nothing, so modes come from the store alone."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_declares_nothing_and_is_local_only(directory: Path) -> None:
    store = metricache.open_store("file", path=str(directory))
    assert isinstance(store, FileStore)
    assert store.capabilities == frozenset()
    assert select_strategy(store).strategy is Strategy.LOCAL_ONLY
    assert store.describe() == f"file {directory}"
    store.ping()


def test_primitives_round_trip_any_key_inside_the_directory(directory: Path) -> None:
    store = open_store(directory)
    keys = [b"plain", b"../../escape", b"/etc/passwd", b"\r\nflush_all\r\n", b"", bytes(range(256))]
    keys.append(b"k" * 5000)
    for n, key in enumerate(keys):
        store.set(key, b"value-%d" % n + key, 60)
    assert store.get_many([*keys, b"missing"]) == {
        key: b"value-%d" % n + key for n, key in enumerate(keys)
    }
    # Every file is directly in the directory, named by the key's digest.
    names = {p.name for p in directory.iterdir() if p.is_file()}
    assert names == {file_name(k) for k in keys}
    assert all(len(name) < 200 for name in names)
    store.set_many({b"a": b"1", b"b": b""}, 60)
    assert store.get(b"b") == b""
    assert store.touch(b"a", 60)
    assert not store.touch(b"missing", 60)
    assert store.delete(b"a")
    assert not store.delete(b"a")
    assert store.get(b"a") is None
    store.merge_map(b"m", {"x": "1"}, 60)
    store.merge_map(b"m", {"x": "2", "y": "3"}, 60, only_new=True)
    assert store.get_map(b"m") == {"x": "1", "y": "3"}
    store.replace_map(b"m", {"z": "4"}, 60)
    assert store.get_map(b"m") == {"z": "4"}
    assert store.reported == []


def test_directory_is_0700_and_files_are_0600(directory: Path, umask_zero: None) -> None:
    store = open_store(directory)
    store.set(b"k", b"v", 60)
    store.merge_map(b"m", {"a": "b"}, 60)
    assert mode(directory) == 0o700
    assert mode(directory / ".locks") == 0o700
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files
    assert {mode(p) for p in files} == {0o600}


def test_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "occupied"
    path.write_text("not a directory")
    with pytest.raises(StoreError, match="not a directory"):
        open_store(path)


def test_writes_replace_files_whole_and_leave_no_temporary_files(directory: Path) -> None:
    store = open_store(directory)
    key = b"big"
    versions = [bytes([n]) * 1_000_000 for n in range(2)]
    store.set(key, versions[0], 60)
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            value = store.get(key)
            assert value is not None
            seen.add(value[:1] + value[-1:] + bytes([len(set(value))]))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(40):
            store.set(key, versions[n % 2], 60)
    finally:
        stop.set()
        reader.join()
    # Every read saw one whole version: same first and last byte, one distinct byte.
    assert seen <= {b"\x00\x00\x01", b"\x01\x01\x01"}
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]
    assert store.reported == []


def test_expired_values_are_absent_and_their_files_removed(directory: Path) -> None:
    store = open_store(directory)
    store.set(b"short", b"v", 0.05)
    store.set(b"never-read", b"v", 0.05)
    store.set(b"long", b"v", 60)
    time.sleep(0.1)
    assert store.get(b"short") is None
    assert not (directory / file_name(b"short")).exists()
    assert not store.touch(b"never-read", 60)
    assert store.sweep() == 1
    assert {p.name for p in directory.iterdir() if p.is_file()} == {file_name(b"long")}


def test_garbage_and_half_written_files_are_ignored_reported_and_removed(
    directory: Path,
) -> None:
    store = open_store(directory)
    store.set(b"whole", b"value", 60)
    data = (directory / file_name(b"whole")).read_bytes()
    (directory / file_name(b"garbage")).write_bytes(b"not a metricache file at all")
    (directory / file_name(b"half")).write_bytes(data[:-1])
    (directory / file_name(b"other")).write_bytes(data)  # a file holding another key
    for key in (b"garbage", b"half", b"other"):
        assert store.get(key) is None
        assert not (directory / file_name(key)).exists()
    assert len(store.reported) == 3
    assert store.get(b"whole") == b"value"
    # Found when a store opens: reported and removed, never raised; temp files of a
    # crashed writer go once they are old.
    (directory / file_name(b"broken")).write_bytes(data[: records.HEADER_SIZE + 2])
    stale = directory / f".{file_name(b'whole')}.1.abcd.tmp"
    stale.write_bytes(data[:10])
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    fresh = directory / f".{file_name(b'whole')}.2.abcd.tmp"
    fresh.write_bytes(data[:10])
    reopened = open_store(directory)
    assert len(reopened.reported) == 1
    assert not (directory / file_name(b"broken")).exists()
    assert not stale.exists()
    assert fresh.exists()
    assert reopened.get(b"whole") == b"value"


def test_merge_map_from_threads_and_a_forked_child_loses_nothing(directory: Path) -> None:
    store = open_store(directory)
    # The key's lock file is open before the fork: the child must not share it.
    store.merge_map(b"shared", {"before": "x"}, 60)

    def merge(prefix: str, count: int) -> None:
        for i in range(count):
            store.merge_map(b"shared", {f"{prefix}-{i}": "x"}, 60)

    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            merge("child", 100)
            status = 0
        finally:
            os._exit(status)
    threads = [threading.Thread(target=merge, args=(f"t{n}", 50)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    expected = {"before": "x", **{f"child-{i}": "x" for i in range(100)}}
    expected.update({f"t{n}-{i}": "x" for n in range(3) for i in range(50)})
    assert store.get_map(b"shared") == expected


def test_merge_map_from_several_processes_loses_nothing(directory: Path) -> None:
    args = {"store": "file", "options": {"path": str(directory)}, "key": "registry"}
    run_workers("merge", [{**args, "me": f"p{n}", "entries": 60} for n in range(4)])
    store = open_store(directory)
    assert store.get_map(b"registry") == {f"p{n}-{i}": str(i) for n in range(4) for i in range(60)}


def test_a_restarted_process_with_the_same_instance_id_resumes_its_counters(
    directory: Path,
) -> None:
    env = {"METRICACHE_INSTANCE_ID": "billing-1"}
    first = {"path": str(directory), "counts": {"a": 3, "b": 1}, "observe": [0.5, 1.5, 9.0]}
    (one,) = run_workers("file_run", [first], env)
    assert one["ok"]
    assert one["strategy"] == "local_only"
    assert one["instance"] == "billing-1"
    assert one["counts"] == {"a": 3.0, "b": 1.0}
    second = {"path": str(directory), "counts": {"a": 10, "c": 2}, "observe": [1.0]}
    (two,) = run_workers("file_run", [second], env)
    assert two["counts"] == {"a": 13.0, "b": 1.0, "c": 2.0}
    assert two["buckets"] == [2, 3, 4]  # cumulative: <= 1, <= 2, +Inf
    assert two["sum"] == 12.0
    # Another instance id starts from nothing; the first one's view is still there.
    (other,) = run_workers("file_run", [second], {"METRICACHE_INSTANCE_ID": "billing-2"})
    assert other["counts"] == {"a": 10.0, "c": 2.0}
    store = metricache.open_store("file", path=str(directory))
    view = metricache.merged_snapshot(store, instance_id="billing-1")
    assert view.instance == "billing-1"
    assert {s.labels: s.value for s in view["restarts"].samples} == {  # type: ignore[union-attr]
        ("a",): 13.0,
        ("b",): 1.0,
        ("c",): 2.0,
    }


def test_an_existing_directory_open_to_others_is_reported_when_opened(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with caplog.at_level(logging.WARNING, logger="metricache.file"):
        metricache.open_store("file", path=str(shared))
    assert any("open to other users (mode 777)" in r.getMessage() for r in caplog.records)
