"""``metricache.open_reader()``: another process reads the view where the syncers wrote it.

The store, the namespace and the retention come from the configuration, so a store
configured with a namespace other than the default is read at its syncers' keys
(``merged_snapshot(store)`` alone would read the default namespace and find nothing).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import metricache
import pytest
from metricache.runtime import ViewReader

from tests.core.plugin_packages import ROOT, cli_env
from tests.support.servers import RedisServer

WRITER = """\
import metricache
metricache.Counter("orders", "Orders placed", ["shop"]).labels("eu").inc(4)
metricache.start().stop()  # one final sync
"""


def test_a_separate_process_reads_the_configured_namespace(
    redis_server: RedisServer, namespace: str, tmp_path: Path
) -> None:
    config = tmp_path / "metricache.toml"
    config.write_text(
        f'[store]\nname = "redis"\noptions = {{ url = "{redis_server.url}" }}\n'
        f'[sync]\nnamespace = "{namespace}"\nretention = 120.0\n',
        encoding="utf-8",
    )
    written = subprocess.run(
        [sys.executable, "-c", WRITER],
        cwd=tmp_path,
        env=cli_env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert written.returncode == 0, written.stderr

    with metricache.open_reader(str(config)) as reader:
        assert isinstance(reader, ViewReader)
        assert reader.config.sync.namespace == namespace
        view = reader.view()
        default = metricache.merged_snapshot(reader.store)  # the default namespace
    assert {k: v for k, v in view.values().items() if k[0] == "orders"} == {
        ("orders", ("eu",)): 4.0
    }
    assert default.get("orders") is None


def test_open_reader_closes_the_store_it_opened(tmp_path: Path) -> None:
    config = tmp_path / "metricache.toml"
    config.write_text(f'[store]\nname = "file"\noptions = {{ path = "{tmp_path}/s" }}\n')
    reader = metricache.open_reader(str(config))
    closed: list[bool] = []
    original = reader.store.close

    def close() -> None:
        closed.append(True)
        original()

    reader.store.close = close  # type: ignore[method-assign]
    with reader:
        reader.view()
    assert closed == [True]


def test_open_reader_refuses_an_invalid_configuration(tmp_path: Path) -> None:
    config = tmp_path / "metricache.toml"
    config.write_text('[store]\nname = "nosuch"\n', encoding="utf-8")
    with pytest.raises(metricache.ConfigError, match="unknown store 'nosuch'"):
        metricache.open_reader(str(config))
