"""The ``file``, ``stdout`` and ``http`` exporters.

``file`` writes atomically (a temporary file in the same directory, then a rename),
so a reader never sees half a file. Its path may name the export's time and format
(``exports/metrics-{timestamp}.{ext}``, or strftime fields such as ``%Y-%m-%d``), and
``keep`` prunes all but the newest files the pattern names.

``http`` POSTs the bytes with the format's content type. Credentials come from an
environment variable or a file, never from an option value alone, so they stay out of
shell histories, process lists and configuration files.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import logging
import os
import re
import string
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs

from metricache.config import Count, Seconds
from metricache.exporters import Exporter, ExportRequest
from metricache.hookspecs import hookimpl
from metricache.masking import mask_url

__all__ = [
    "FileExporter",
    "FileOptions",
    "HttpExporter",
    "HttpOptions",
    "PathPattern",
    "StdoutExporter",
    "write_atomically",
]

log = logging.getLogger("metricache.export")


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


# -- file ------------------------------------------------------------------------------

_TIME_FIELDS = {
    # ISO 8601 basic format in UTC: names sort in time order, and contain no ':'.
    "timestamp": r"\d{8}T\d{6}Z",
    "unix": r"\d+",
}
_CONSTANT_FIELDS = ("ext", "format", "view", "instance")
_STRFTIME = re.compile(r"%([-_0^#]?[A-Za-z%])")


def _field_values(request: ExportRequest) -> dict[str, str]:
    when = time.gmtime(request.snapshot_timestamp)
    values = {
        "timestamp": time.strftime("%Y%m%dT%H%M%SZ", when),
        "unix": str(int(request.snapshot_timestamp)),
        "ext": request.extension,
        "format": request.format,
        "view": request.view.value,
        "instance": request.instance or request.view.value,
    }
    # A value never adds a directory level or ends the name early.
    return {k: v.replace("/", "_").replace("\0", "_") for k, v in values.items()}


@attrs.frozen
class PathPattern:
    """A file path with fields of the export in it.

    ``{timestamp}`` (UTC, ``20240131T235959Z``), ``{unix}`` (whole seconds),
    ``{ext}``, ``{format}``, ``{view}`` and ``{instance}`` (the instance id, or
    ``merged``), plus strftime fields (``%Y``, ``%m``, ``%d``, ``%H`` ... in UTC) in
    the literal text. ``{{``, ``}}`` and ``%%`` stand for a literal brace or percent.
    """

    text: str
    parts: tuple[tuple[str, str | None], ...]  # (literal, field or None)

    @classmethod
    def parse(cls, text: str) -> PathPattern:
        """Parse ``text``; an unknown field or a format spec raises ValueError."""
        known = sorted([*_TIME_FIELDS, *_CONSTANT_FIELDS])
        parts: list[tuple[str, str | None]] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"path {text!r}: {exc} (write {{{{ and }}}} for braces)") from None
        for literal, field, spec, conversion in parsed:
            if field is not None:
                if field not in known:
                    raise ValueError(
                        f"path {text!r}: unknown field {{{field}}}; known fields: "
                        + ", ".join(f"{{{k}}}" for k in known)
                    )
                if spec or conversion:
                    raise ValueError(f"path {text!r}: field {{{field}}} takes no format spec")
            parts.append((literal, field))
        return cls(text, tuple(parts))

    def _split(self) -> tuple[PathPattern, PathPattern]:
        # Field names hold no '/', so the last '/' of the text ends the directory.
        directory, _, name = self.text.rpartition("/")
        return PathPattern.parse(directory), PathPattern.parse(name)

    def varies_in_time(self) -> bool:
        """Whether the pattern holds a time field (strftime, ``{timestamp}``, ``{unix}``)."""
        for literal, field in self.parts:
            if field in _TIME_FIELDS:
                return True
            if any(m.group(1) != "%" for m in _STRFTIME.finditer(literal)):
                return True
        return False

    def directory_varies_in_time(self) -> bool:
        """Whether the directory part of the path holds a time field."""
        return self._split()[0].varies_in_time()

    def render(self, request: ExportRequest) -> Path:
        """Return the path of one export."""
        values = _field_values(request)
        when = time.gmtime(request.snapshot_timestamp)
        out = []
        for literal, field in self.parts:
            out.append(time.strftime(literal, when) if "%" in literal else literal)
            if field is not None:
                out.append(values[field])
        return Path("".join(out))

    def name_regex(self, request: ExportRequest) -> re.Pattern[str]:
        """Return a regex matching the file names this pattern gives exports like ``request``.

        Time fields match any time; the other fields match their value for this
        request (another format's or instance's files never match). Only the file
        name is matched: the directory is fixed.
        """
        values = _field_values(request)
        pieces: list[str] = []
        for literal, field in self._split()[1].parts:
            pos = 0
            for match in _STRFTIME.finditer(literal):
                pieces.append(re.escape(literal[pos : match.start()]))
                pieces.append("%" if match.group(1) == "%" else "[^/]+?")
                pos = match.end()
            pieces.append(re.escape(literal[pos:]))
            if field is not None:
                pieces.append(_TIME_FIELDS.get(field) or re.escape(values[field]))
        return re.compile("".join(pieces))


def _check_path(instance: FileOptions, attribute: Any, value: str) -> None:
    if value:
        PathPattern.parse(value)


@attrs.frozen(kw_only=True)
class FileOptions:
    """Options of the file exporter.

    ``path``: the file to write; may hold fields (see :class:`PathPattern`).
    ``keep``: keep only the newest N files the pattern names in its directory,
    deleting older ones after each successful write (default: keep all).
    """

    path: str = attrs.field(default="", validator=_check_path)
    keep: Count | None = None

    def __attrs_post_init__(self) -> None:
        if self.keep is not None:
            if not self.path:
                raise ValueError("keep needs a path")
            if PathPattern.parse(self.path).directory_varies_in_time():
                raise ValueError(
                    "keep needs a fixed directory: put the time fields of the path in the "
                    "file name, not in a directory"
                )


class FileExporter(Exporter):
    """Write the export to a file, atomically; optionally keep only the newest N files."""

    name = "file"
    options_class = FileOptions

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        """Write ``payload`` to the path the pattern gives, then prune old files."""
        options: FileOptions = self.options
        if not options.path:
            raise ValueError("the file exporter needs a path (--output PATH)")
        pattern = PathPattern.parse(options.path)
        path = pattern.render(request)
        write_atomically(path, payload)
        if options.keep is not None:
            self._prune(pattern, path, request, options.keep)
        return str(path)

    def _prune(
        self, pattern: PathPattern, written: Path, request: ExportRequest, keep: int
    ) -> None:
        regex = pattern.name_regex(request)
        directory = written.parent
        found = []
        for entry in _scan(directory):
            if not entry.is_file(follow_symlinks=False) or not regex.fullmatch(entry.name):
                continue
            if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                continue  # another export's temporary file
            found.append((entry.stat().st_mtime_ns, entry.name))
        found.sort()
        stale = [name for _, name in found[: max(len(found) - keep, 0)]]
        for name in stale:
            if name == written.name:
                continue
            try:
                (directory / name).unlink()
            except OSError as exc:
                log.warning("could not delete old export %s: %s", directory / name, exc)


def _scan(directory: Path) -> Iterator[os.DirEntry[str]]:
    with os.scandir(directory) as entries:
        yield from entries


# -- stdout ----------------------------------------------------------------------------


class StdoutExporter(Exporter):
    """Write the export to standard output."""

    name = "stdout"

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        """Write ``payload`` to standard output."""
        out = sys.stdout.buffer
        out.write(payload)
        out.flush()
        return "stdout"


# -- http ------------------------------------------------------------------------------

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_RESERVED_HEADERS = {"content-type", "content-length", "authorization", "host"}


def parse_headers(text: str) -> dict[str, str]:
    """Parse ``Name: value`` lines (one header per line) into a dict."""
    headers: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        name = name.strip()
        if not sep or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"headers: expected 'Name: value' lines, got {line!r}")
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError(
                f"headers: {name} is set by the exporter (use the auth options for credentials)"
            )
        headers[name] = value.strip()
    return headers


def _check_url(instance: HttpOptions, attribute: Any, value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"url: expected an http:// or https:// URL, got {mask_url(value)!r}")
    if "@" in urllib.parse.urlsplit(value).netloc:
        raise ValueError(
            f"url: {mask_url(value)!r} holds credentials; give username with password_env or "
            "password_file instead"
        )


def _check_headers(instance: HttpOptions, attribute: Any, value: str) -> None:
    parse_headers(value)


@attrs.frozen(kw_only=True)
class HttpOptions:
    """Options of the http exporter.

    ``url``: where to POST. ``timeout``: seconds for connecting and for the answer.
    ``headers``: extra ``Name: value`` lines. Auth, at most one kind: a bearer token
    from ``bearer_token_env`` (an environment variable's name) or ``bearer_token_file``
    (a file's path); or basic auth with ``username`` and a password from
    ``password_env`` or ``password_file``.
    """

    url: str = attrs.field(validator=_check_url)
    timeout: Seconds = attrs.field(default=Seconds(10.0))
    headers: str = attrs.field(default="", validator=_check_headers)
    bearer_token_env: str = ""
    bearer_token_file: str = ""
    username: str = ""
    password_env: str = ""
    password_file: str = ""

    def __attrs_post_init__(self) -> None:
        if self.bearer_token_env and self.bearer_token_file:
            raise ValueError("give bearer_token_env or bearer_token_file, not both")
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        bearer = bool(self.bearer_token_env or self.bearer_token_file)
        password = bool(self.password_env or self.password_file)
        if bearer and (self.username or password):
            raise ValueError("choose bearer token auth or basic auth, not both")
        if password and not self.username:
            raise ValueError("basic auth needs a username")
        if self.username and not password:
            raise ValueError("basic auth needs password_env or password_file")


def _secret(env: str, file: str, what: str) -> str:
    """Read a secret at delivery time, so a rotated token is picked up."""
    if env:
        value = os.environ.get(env, "")
        if not value:
            raise ValueError(f"the environment variable {env} holding the {what} is not set")
        return value
    try:
        value = Path(file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read the {what} file {file}: {exc.strerror or exc}") from None
    if not value:
        raise ValueError(f"the {what} file {file} is empty")
    return value


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: urllib would turn the POST into a GET and drop the payload."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class HttpExporter(Exporter):
    """POST the export to a URL; any answer but 2xx is a failure."""

    name = "http"
    options_class = HttpOptions

    def __init__(self, options: Any = None) -> None:
        if options is None:
            raise ValueError("the http exporter needs a url")
        super().__init__(options)
        self._opener = urllib.request.build_opener(_NoRedirects)

    def _auth_header(self) -> str | None:
        options: HttpOptions = self.options
        if options.bearer_token_env or options.bearer_token_file:
            token = _secret(options.bearer_token_env, options.bearer_token_file, "bearer token")
            return f"Bearer {token}"
        if options.username:
            password = _secret(options.password_env, options.password_file, "password")
            pair = f"{options.username}:{password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        return None

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        """POST ``payload`` with the format's content type; raise unless the answer is 2xx."""
        options: HttpOptions = self.options
        headers = {"Content-Type": request.content_type, **parse_headers(options.headers)}
        auth = self._auth_header()
        if auth is not None:
            headers["Authorization"] = auth
        where = mask_url(options.url)
        http_request = urllib.request.Request(
            options.url, data=payload, headers=headers, method="POST"
        )
        try:
            with self._opener.open(http_request, timeout=options.timeout) as response:
                status: int = response.status
                response.read()
        except urllib.error.HTTPError as exc:
            exc.close()
            raise OSError(f"POST {where} answered {exc.code} {exc.reason}") from None
        except urllib.error.URLError as exc:
            raise OSError(f"POST {where} failed: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise OSError(f"POST {where} failed: {type(exc).__name__}: {exc}") from None
        if not 200 <= status < 300:
            raise OSError(f"POST {where} answered {status}")
        return f"{where} ({status})"


@hookimpl
def metricache_exporters() -> Iterable[type[Exporter]]:
    """Offer the file, stdout and http exporters."""
    return [FileExporter, StdoutExporter, HttpExporter]
