"""Formats and exporters that each break one promise the author's kits check.

Each is correct but for one thing, so the kit must name exactly that promise.
"""

from __future__ import annotations

import itertools
import math
import urllib.request
from collections.abc import Iterable
from typing import Any

import attrs
from metricache.exporters import Exporter, ExportRequest
from metricache.formats import Format
from metricache.snapshot import HistogramSample, Snapshot
from metricache_conformance import FlatSample, HttpDestination, flat_samples

__all__ = [
    "ClockFormat",
    "FragileFormat",
    "LeakyExporter",
    "LinesFormat",
    "MislabelledFormat",
    "PatientExporter",
    "PostOptions",
    "SwallowingExporter",
    "TextFormat",
    "TrimmingExporter",
    "destination",
    "parse_lines",
]


def _lines(snapshot: Snapshot) -> Iterable[str]:
    """``name{k="v",...} value`` per sample, label values written as they are (no escaping)."""
    for sample in flat_samples(snapshot):
        labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
        yield f"{sample.name}{{{labels}}} {sample.value!r}"


class LinesFormat(Format):
    """A format that never escapes a label value: a newline in one splits the sample."""

    name = "naive-lines"
    content_type = "text/x-lines; charset=utf-8"
    media_types = ("text/x-lines",)
    extension = "lines"

    def render(self, snapshot: Snapshot) -> bytes:
        return "".join(line + "\n" for line in _lines(snapshot)).encode("utf-8")


def parse_lines(payload: bytes) -> list[FlatSample]:
    """Read :class:`LinesFormat` back (as its author would, trusting it)."""
    found = []
    for line in payload.decode("utf-8").splitlines():
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        pairs = [p.split("=", 1) for p in labels.rstrip("}").split(",") if "=" in p]
        found.append(FlatSample(name, {k: v.strip('"') for k, v in pairs}, float(value)))
    return found


class TextFormat(LinesFormat):
    """Returns text, not bytes."""

    name = "text-not-bytes"

    def render(self, snapshot: Snapshot) -> bytes:
        text: Any = "".join(line + "\n" for line in _lines(snapshot))
        broken: bytes = text  # the broken promise: a str
        return broken


class ClockFormat(LinesFormat):
    """Numbers every rendering: the same snapshot never renders to the same bytes."""

    name = "numbered"
    _renderings = itertools.count()

    def render(self, snapshot: Snapshot) -> bytes:
        return f"# rendering {next(self._renderings)}\n".encode() + super().render(snapshot)


class MislabelledFormat(LinesFormat):
    """Sends a content type that is not among the media types it answers to."""

    name = "mislabelled"
    content_type = "text/plain; charset=utf-8"


class FragileFormat(LinesFormat):
    """Raises on a value that is not finite."""

    name = "fragile"

    def render(self, snapshot: Snapshot) -> bytes:
        for family in snapshot:
            for sample in family.samples:
                if not isinstance(sample, HistogramSample) and not math.isfinite(sample.value):
                    raise ValueError(f"cannot write {sample.value!r}")
        return super().render(snapshot)


@attrs.frozen(kw_only=True)
class PostOptions:
    """``url``, ``timeout``, ``bearer_token_env`` (the variable holding the token)."""

    url: str
    timeout: float = 10.0
    bearer_token_env: str = ""


class _Poster(Exporter):
    options_class = PostOptions
    options: PostOptions

    def _post(self, payload: bytes, timeout: float | None) -> int:
        import os

        token = os.environ.get(self.options.bearer_token_env, "")
        post = urllib.request.Request(
            self.options.url,
            data=payload,
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(post, timeout=timeout) as response:
            status: int = response.status
            return status

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        try:
            status = self._post(payload, self.options.timeout)
        except OSError as exc:
            raise OSError(f"POST {self.options.url} failed: {exc}") from None
        return f"{self.options.url} ({status})"


class SwallowingExporter(_Poster):
    """Swallows every error: a failed delivery looks like a success."""

    name = "swallowing"

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        try:
            return super().deliver(payload, request)
        except OSError:
            return "sent"  # the broken promise


class LeakyExporter(_Poster):
    """Puts its token in its error messages."""

    name = "leaky"

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        import os

        try:
            return super().deliver(payload, request)
        except OSError as exc:
            token = os.environ.get(self.options.bearer_token_env, "")
            raise OSError(f"{exc} (token {token})") from None  # the broken promise


class PatientExporter(_Poster):
    """Waits for an answer as long as it takes, whatever its timeout says."""

    name = "patient"

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        try:
            status = self._post(payload, None)  # the broken promise: no timeout
        except OSError as exc:
            raise OSError(f"POST {self.options.url} failed: {exc}") from None
        return f"{self.options.url} ({status})"


class TrimmingExporter(_Poster):
    """Strips white space around the payload before sending it."""

    name = "trimming"

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        return super().deliver(payload.strip(), request)  # the broken promise


def destination() -> HttpDestination:
    """Where the broken exporters deliver: a local receiver, a token in the environment."""
    return HttpDestination()
