"""Where an exporter under test delivers: a destination, and the servers to build one.

A :class:`Destination` gives the exporter's options for a live destination and reads
back what arrived; optionally, options for a destination that is down (and the name
the exporter's error must give), for one that never answers (with the exporter's
timeout set), and a secret that must never show. The kit has destinations for the
``file``, ``stdout`` and ``http`` exporters (:func:`builtin_destination`); an
exporter author builds one on :class:`HttpReceiver` and :class:`SilentServer`.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import select
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import attrs

from metricache_conformance.servers import free_port

__all__ = [
    "Delivery",
    "Destination",
    "FileDestination",
    "HttpDestination",
    "HttpReceiver",
    "SilentServer",
    "StdoutDestination",
    "Unreachable",
    "builtin_destination",
    "unreachable_url",
]


_D = TypeVar("_D", bound="Destination")


@attrs.frozen
class Unreachable:
    """Options of a destination that is down, and what the exporter's error must name."""

    options: Mapping[str, object]
    name: str


class Destination:
    """A destination of the exporter under test (override what applies).

    ``options()`` are the exporter's options for the live destination and
    ``received()`` what arrived there, in order. ``unreachable()`` describes a
    destination that is down, ``silent(timeout)`` gives options for one that accepts
    and never answers with the exporter's timeout set to ``timeout``; each is None
    when it does not apply. ``secret`` (a credential the options lead the exporter
    to use) must never appear in a description or an error. ``around()`` wraps
    every delivery (the stdout destination captures there).
    """

    secret: str | None = None

    def options(self) -> Mapping[str, object]:
        """The exporter's options for the live destination."""
        raise NotImplementedError

    def received(self) -> list[bytes]:
        """The payloads the live destination received so far, in order."""
        raise NotImplementedError

    def unreachable(self) -> Unreachable | None:
        """A destination that is down (None: the exporter has no such thing)."""
        return None

    def silent(self, timeout: float) -> Mapping[str, object] | None:
        """Options for a destination that never answers, with ``timeout`` (None: no timeout)."""
        return None

    def around(self) -> AbstractContextManager[None]:
        """What wraps one delivery (nothing by default)."""
        return contextlib.nullcontext()

    def close(self) -> None:
        """Stop what the destination started."""

    def __enter__(self: _D) -> _D:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def unreachable_url(path: str = "/") -> str:
    """An ``http://127.0.0.1:PORT`` URL that nothing listens on."""
    return f"http://127.0.0.1:{free_port()}{path}"


@attrs.frozen
class Delivery:
    """One request an :class:`HttpReceiver` answered: method, path, headers, body."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes


class HttpReceiver:
    """A local HTTP server that answers every POST and PUT with ``status`` and keeps the body."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.deliveries: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _receive(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.deliveries.append(
                    Delivery(self.command, self.path, dict(self.headers.items()), body)
                )
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _receive  # the names http.server calls

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def bodies(self) -> list[bytes]:
        """The bodies received so far, in order."""
        return [d.body for d in self.deliveries]

    def close(self) -> None:
        """Stop the server."""
        self._server.shutdown()
        self._server.server_close()


class SilentServer:
    """Accepts connections and never answers; each is closed after ``hold`` seconds."""

    def __init__(self, hold: float = 5.0) -> None:
        self.hold = hold
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _run(self) -> None:
        held: list[tuple[float, socket.socket]] = []
        while not self._stop.is_set():
            readable, _, _ = select.select([self._listener], [], [], 0.05)
            if readable:
                conn, _ = self._listener.accept()
                held.append((time.monotonic() + self.hold, conn))
            now = time.monotonic()
            for entry in [e for e in held if e[0] <= now]:
                entry[1].close()
                held.remove(entry)
        for _, conn in held:
            conn.close()

    def close(self) -> None:
        """Stop accepting and close what is held."""
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()


class FileDestination(Destination):
    """A temporary directory; each export a file named after the export's time."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="metricache-exporter-kit-"))
        self._blocker = self.directory / "a-file-not-a-directory"
        self._blocker.write_bytes(b"")

    def options(self) -> Mapping[str, object]:
        """Write ``export-{unix}.{ext}`` into the directory."""
        return {"path": str(self.directory / "export-{unix}.{ext}")}

    def received(self) -> list[bytes]:
        """The files written, oldest export first."""
        files = [p for p in self.directory.glob("export-*") if p.suffix != ".tmp"]
        files.sort(key=lambda p: int(p.name.split("-")[1].split(".")[0]))
        return [p.read_bytes() for p in files]

    def unreachable(self) -> Unreachable:
        """A path below a regular file: no directory can be made there."""
        return Unreachable({"path": str(self._blocker / "export.{ext}")}, str(self._blocker))

    def close(self) -> None:
        """Remove the directory."""
        import shutil

        shutil.rmtree(self.directory, ignore_errors=True)


class StdoutDestination(Destination):
    """Standard output, captured around each delivery."""

    def __init__(self) -> None:
        self._captured: list[bytes] = []

    def options(self) -> Mapping[str, object]:
        """No options."""
        return {}

    def received(self) -> list[bytes]:
        """What each delivery wrote to standard output."""
        return list(self._captured)

    @contextlib.contextmanager
    def _capture(self) -> Iterator[None]:
        buffer = io.BytesIO()
        saved = sys.stdout
        wrapper = io.TextIOWrapper(buffer, encoding="utf-8", write_through=True)
        sys.stdout = wrapper
        try:
            yield
        finally:
            wrapper.flush()
            sys.stdout = saved
            self._captured.append(buffer.getvalue())
            wrapper.detach()  # leaves the buffer open: closing it is the garbage collector's

    def around(self) -> AbstractContextManager[None]:
        """Capture standard output during the delivery."""
        return self._capture()


class HttpDestination(Destination):
    """A local HTTP receiver, for an exporter whose ``url`` option says where it sends.

    ``extra`` options are added to every set of options (an exporter's required ones).
    With ``token_option`` (the option naming an environment variable that holds a
    token, as the ``http`` exporter's ``bearer_token_env``), the destination puts a
    secret token in a fresh variable, names it there, and checks that it never shows.
    ``timeout_option`` is the option of the exporter's timeout in seconds.
    """

    def __init__(
        self,
        extra: Mapping[str, object] | None = None,
        *,
        token_option: str | None = "bearer_token_env",
        timeout_option: str = "timeout",
    ) -> None:
        self.extra = dict(extra or {})
        self.timeout_option = timeout_option
        self.receiver = HttpReceiver()
        self._auth: dict[str, object] = {}
        self._variable = ""
        if token_option is not None:
            self.secret = "kit-secret-" + secrets.token_hex(8)
            self._variable = "METRICACHE_KIT_TOKEN_" + secrets.token_hex(4).upper()
            os.environ[self._variable] = self.secret
            self._auth = {token_option: self._variable}
        self._silent: SilentServer | None = None

    def _with(self, url: str, **more: object) -> dict[str, object]:
        return {"url": url, **self._auth, **self.extra, **more}

    def options(self) -> Mapping[str, object]:
        """POST to the receiver, with the token."""
        return self._with(self.receiver.url + "/ingest")

    def received(self) -> list[bytes]:
        """The bodies the receiver got."""
        return self.receiver.bodies()

    def unreachable(self) -> Unreachable:
        """A port nothing listens on."""
        url = unreachable_url("/ingest")
        return Unreachable(self._with(url), url.split("/")[2])

    def silent(self, timeout: float) -> Mapping[str, object]:
        """A server that accepts and never answers."""
        if self._silent is None:
            self._silent = SilentServer()
        return self._with(self._silent.url + "/ingest", **{self.timeout_option: timeout})

    def close(self) -> None:
        """Stop the servers; forget the token."""
        self.receiver.close()
        if self._silent is not None:
            self._silent.close()
        if self._variable:
            os.environ.pop(self._variable, None)


_BUILTIN: dict[str, Callable[[], Destination]] = {
    "file": FileDestination,
    "stdout": StdoutDestination,
    "http": HttpDestination,
}


def builtin_destination(exporter: str) -> Destination | None:
    """Open the kit's destination for one of metricache's own exporters (None for others)."""
    make = _BUILTIN.get(exporter)
    return make() if make is not None else None
