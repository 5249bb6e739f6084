"""The file store keeps what it writes to its user: files 0600 in a 0700 directory.

A process with the most permissive umask there is (000) syncs through the file store
into a directory it creates; afterwards every directory the store made is 0700 and
every file in it (values, the instance registry, lock files) is 0600. Metrics can
reveal a lot about an application; another user of the machine reads none of it.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import os, sys
    os.umask(0)
    import metricache
    registry = metricache.Registry()
    metricache.Counter("orders", "Orders", ["shop"], registry=registry).labels("a").inc(3)
    metricache.Gauge("level", "Level", registry=registry).set(2)
    store = metricache.open_store("file", path=sys.argv[1])
    syncer = metricache.Syncer(registry, store, interval=3600, instance_id="perm")
    for _ in range(3):
        assert syncer.flush().ok
    store.set(b"plain key", b"value", 60)
    store.merge_map(b"a map", {"k": "v"}, 60)
    store.touch(b"plain key", 120)
    syncer.stop()
    """
)


def test_with_umask_000_every_file_is_0600_and_every_directory_0700(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(directory)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    directories = [directory, *(p for p in directory.rglob("*") if p.is_dir())]
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert len(directories) == 2  # the store's directory and its lock files'
    assert len(files) >= 4  # the saved view, its registry, two keys, lock files
    assert any(p.parent.name == ".locks" for p in files)
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in directories} == {"0o700"}
    assert {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {"0o600"}
    assert not [p for p in files if p.name.endswith(".tmp")]
