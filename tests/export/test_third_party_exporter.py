"""A third-party exporter is a package with one entry point: installed, the CLI uses it."""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import metricache_json

from tests.export.cli import metricache_cli

PLUGIN_SOURCE = '''\
"""A journal exporter: appends each export to a file as one JSON line."""

from __future__ import annotations

import json

import attrs
from metricache import hookimpl
from metricache.exporters import Exporter, ExportRequest


@attrs.frozen(kw_only=True)
class JournalOptions:
    path: str
    label: str = "export"


class JournalExporter(Exporter):
    name = "NAME"
    options_class = JournalOptions

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        record = {
            "label": self.options.label,
            "format": request.format,
            "content_type": request.content_type,
            "view": request.view.value,
            "payload": payload.decode("utf-8"),
        }
        with open(self.options.path, "a", encoding="utf-8") as journal:
            journal.write(json.dumps(record) + "\\n")
        return self.options.path


@hookimpl
def metricache_exporters():
    return [JournalExporter]
'''


def uv() -> str:
    found = shutil.which("uv")
    assert found is not None, "uv must be on PATH to install the test plugin"
    return found


def test_an_installed_exporter_package_is_usable_from_the_cli(tmp_path: Path) -> None:
    suffix = secrets.token_hex(4)
    distribution = f"metricache-journal-{suffix}"
    module = f"metricache_journal_{suffix}"
    exporter_name = f"journal_{suffix}"
    package = tmp_path / "package"
    (package / "src" / module).mkdir(parents=True)
    (package / "src" / module / "__init__.py").write_text(
        PLUGIN_SOURCE.replace("NAME", exporter_name), encoding="utf-8"
    )
    (package / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            name = "{distribution}"
            version = "0.1.0"
            dependencies = []

            [project.entry-points.metricache]
            {exporter_name} = "{module}"

            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            """
        ),
        encoding="utf-8",
    )
    work = tmp_path / "work"
    work.mkdir()
    journal = work / "journal.jsonl"
    subprocess.run(
        [uv(), "pip", "install", "--quiet", "--python", sys.executable, str(package)],
        check=True,
        timeout=300,
    )
    try:
        listed = metricache_cli("plugins", "--json", cwd=work)
        assert listed.returncode == 0, listed.stderr.decode()
        plugins = {p["name"]: p for p in json.loads(listed.stdout)}
        assert plugins[exporter_name]["distribution"] == distribution
        assert plugins[exporter_name]["kinds"] == ["exporter"]

        for label in ("first", "second"):
            done = metricache_cli(
                "export",
                "--format",
                "json",
                "--exporter",
                exporter_name,
                "--exporter-option",
                f"path={journal}",
                "--exporter-option",
                f"label={label}",
                cwd=work,
            )
            assert done.returncode == 0, done.stderr.decode()
        records = [json.loads(line) for line in journal.read_text().splitlines()]
        assert [r["label"] for r in records] == ["first", "second"]
        assert {r["content_type"] for r in records} == {"application/json"}
        assert metricache_json.parse(records[0]["payload"]).families == ()

        rejected = metricache_cli(
            "export", "--exporter", exporter_name, "--exporter-option", "colour=red", cwd=work
        )
        assert rejected.returncode == 2
        assert f"--exporter {exporter_name}.colour: unknown key" in rejected.stderr.decode()
    finally:
        subprocess.run(
            [uv(), "pip", "uninstall", "--quiet", "--python", sys.executable, distribution],
            check=True,
            timeout=120,
        )
    gone = metricache_cli("export", "--exporter", exporter_name, cwd=work)
    assert gone.returncode == 2
    assert f"unknown exporter {exporter_name!r}" in gone.stderr.decode()
