"""The ``file`` and ``stdout`` exporters.

``file`` writes atomically (a temporary file in the same directory, then a rename),
so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import attrs

from metricache.exporters import Exporter, ExportRequest
from metricache.hookspecs import hookimpl

__all__ = ["FileExporter", "FileOptions", "StdoutExporter", "write_atomically"]


def write_atomically(path: Path, payload: bytes, mode: int = 0o644) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@attrs.frozen(kw_only=True)
class FileOptions:
    """Options of the file exporter: ``path`` of the file to write."""

    path: str = ""


class FileExporter(Exporter):
    """Write the export to a file, atomically."""

    name = "file"
    options_class = FileOptions

    def deliver(self, payload: bytes, request: ExportRequest, extension: str) -> str:
        """Write ``payload`` to the configured path."""
        options: FileOptions = self.options
        if not options.path:
            raise ValueError("the file exporter needs a path (--output PATH)")
        path = Path(options.path)
        write_atomically(path, payload)
        return str(path)


class StdoutExporter(Exporter):
    """Write the export to standard output."""

    name = "stdout"

    def deliver(self, payload: bytes, request: ExportRequest, extension: str) -> str:
        """Write ``payload`` to standard output."""
        out = sys.stdout.buffer
        out.write(payload)
        out.flush()
        return "stdout"


@hookimpl
def metricache_exporters() -> Iterable[type[Exporter]]:
    """Offer the file and stdout exporters."""
    return [FileExporter, StdoutExporter]
