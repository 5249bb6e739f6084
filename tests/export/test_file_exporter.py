"""The file exporter: atomic writes, path patterns, keeping the newest N files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from metricache.builtin.exporters import PathPattern
from metricache.errors import ConfigError
from metricache.exporters import ExportRequest, open_exporter
from metricache.snapshot import ViewKind

# 2024-01-31 23:59:59.25 UTC
WHEN = 1706745599.25


def request(
    when: float = WHEN,
    fmt: str = "json",
    ext: str = "json",
    view: ViewKind = ViewKind.MERGED,
    instance: str | None = None,
) -> ExportRequest:
    return ExportRequest(
        format=fmt,
        exporter="file",
        view=view,
        snapshot_timestamp=when,
        instance=instance,
        content_type="application/json",
        extension=ext,
    )


def test_writes_the_bytes_and_replaces_the_file_by_rename(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_bytes(b"old")
    old_inode = target.stat().st_ino
    exporter = open_exporter("file", {"path": str(target)})
    assert exporter.deliver(b'{"new": true}', request()) == str(target)
    assert target.read_bytes() == b'{"new": true}'
    # A rename gives a new inode: a reader holding the old file never sees half a write.
    assert target.stat().st_ino != old_inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_creates_missing_directories(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "m.prom"
    open_exporter("file", {"path": str(target)}).deliver(b"x 1\n", request())
    assert target.read_bytes() == b"x 1\n"


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.mkdir()  # a directory where the file should go: the final rename fails
    exporter = open_exporter("file", {"path": str(target)})
    with pytest.raises(OSError):
        exporter.deliver(b"data", request())
    assert target.is_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_fields_and_strftime_in_the_path(tmp_path: Path) -> None:
    pattern = str(tmp_path / "%Y" / "%m" / "{view}-{format}-{timestamp}-{unix}.{ext}")
    exporter = open_exporter("file", {"path": pattern})
    where = exporter.deliver(b"x", request(fmt="openmetrics", ext="om.txt"))
    expected = tmp_path / "2024" / "01" / "merged-openmetrics-20240131T235959Z-1706745599.om.txt"
    assert where == str(expected)
    assert expected.read_bytes() == b"x"


def test_literal_braces_and_percent_signs(tmp_path: Path) -> None:
    exporter = open_exporter("file", {"path": str(tmp_path / "{{x}}-100%%.{ext}")})
    exporter.deliver(b"x", request(ext="csv"))
    assert (tmp_path / "{x}-100%.csv").read_bytes() == b"x"


def test_an_instance_id_never_adds_a_directory(tmp_path: Path) -> None:
    exporter = open_exporter("file", {"path": str(tmp_path / "{instance}.json")})
    exporter.deliver(b"x", request(view=ViewKind.INSTANCE, instance="../escape/web-1"))
    assert (tmp_path / ".._escape_web-1.json").read_bytes() == b"x"


def test_keep_deletes_all_but_the_newest_matching_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an export")
    (tmp_path / "metrics-manual.json").write_text("does not match the timestamp field")
    (tmp_path / "metrics-20200101T000000Z.csv").write_text("another format's export")
    exporter = open_exporter(
        "file", {"path": str(tmp_path / "metrics-{timestamp}.{ext}"), "keep": "3"}
    )
    written = []
    for minute in range(6):
        when = WHEN + 60 * minute
        written.append(Path(exporter.deliver(f"export {minute}".encode(), request(when))))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        [
            "notes.txt",
            "metrics-manual.json",
            "metrics-20200101T000000Z.csv",
            *(p.name for p in written[-3:]),
        ]
    )
    assert written[-1].read_text() == "export 5"


def test_keep_orders_by_modification_time(tmp_path: Path) -> None:
    # strftime names with the day first do not sort in time order; mtimes do.
    exporter = open_exporter("file", {"path": str(tmp_path / "m-%d-%m-%Y.json"), "keep": "2"})
    day = 86400.0
    first = Path(exporter.deliver(b"1", request(WHEN + 2 * day)))  # 02-02-2024
    second = Path(exporter.deliver(b"2", request(WHEN + 10 * day)))  # 10-02-2024
    os.utime(first, ns=(time.time_ns() - 10**12, time.time_ns() - 10**12))
    os.utime(second, ns=(time.time_ns() - 10**11, time.time_ns() - 10**11))
    third = Path(exporter.deliver(b"3", request(WHEN + 1 * day)))  # 01-02-2024, newest
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([second.name, third.name])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": "m-{date}.json"}, "unknown field {date}; known fields: {ext}, {format}"),
        ({"path": "m-{timestamp:%Y}.json"}, "field {timestamp} takes no format spec"),
        ({"path": "m-{.json"}, "write {{ and }} for braces"),
        ({"keep": "2"}, "keep needs a path"),
        ({"path": "m.json", "keep": "0"}, "keep: expected a whole number >= 1"),
        ({"path": "%Y/m-{timestamp}.json", "keep": "2"}, "keep needs a fixed directory"),
        ({"path": "{unix}/m.json", "keep": "2"}, "keep needs a fixed directory"),
        ({"path": "m.json", "mode": "600"}, "export.options.mode: unknown key"),
    ],
)
def test_invalid_options_are_rejected(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        open_exporter("file", options)
    assert message in str(caught.value)


def test_a_constant_directory_field_is_fine_with_keep(tmp_path: Path) -> None:
    pattern = PathPattern.parse(str(tmp_path / "{format}" / "m-{timestamp}.{ext}"))
    assert not pattern.directory_varies_in_time()
    exporter = open_exporter(
        "file", {"path": str(tmp_path / "{format}" / "m-{timestamp}.{ext}"), "keep": "1"}
    )
    exporter.deliver(b"a", request(WHEN))
    exporter.deliver(b"b", request(WHEN + 1))
    assert [p.name for p in (tmp_path / "json").iterdir()] == ["m-20240201T000000Z.json"]


def test_without_a_path_the_delivery_fails_clearly() -> None:
    exporter = open_exporter("file", {})
    with pytest.raises(ValueError, match="needs a path"):
        exporter.deliver(b"x", request())
