"""The exporter kit: does an exporter deliver, fail cleanly, keep secrets and its timeout?

The exporter delivers to a :class:`~metricache_conformance.destinations.Destination`
its author provides (the kit has those of ``file``, ``stdout`` and ``http``):

* ``exporter.declaration``: a name, and options the exporter is built from;
* ``exporter.delivers``: payloads (empty, binary, 2 MB) arrive byte for byte, and
  each delivery returns a description of where it went;
* ``exporter.unreachable``: delivering to a destination that is down raises an
  error that names the destination, without the secret;
* ``exporter.no_secrets``: neither a description nor the exporter's ``repr`` shows
  the secret;
* ``exporter.timeout``: a destination that never answers makes the delivery fail
  within a small multiple of the exporter's timeout.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Mapping

from metricache.config import parse_options
from metricache.errors import ConfigError
from metricache.exporters import Exporter, ExportRequest, available_exporters
from metricache.snapshot import ViewKind

from metricache_conformance.checking import CheckFailed, expect, short
from metricache_conformance.destinations import Destination
from metricache_conformance.kit import KitCheck, KitSuite, NotApplicable
from metricache_conformance.results import Result

__all__ = ["EXPORTER_CHECKS", "PAYLOADS", "TIMEOUT", "ExporterSuite", "load_exporter_class"]

TIMEOUT = 0.5
"""The timeout (seconds) the kit gives an exporter delivering to a silent destination."""

ALLOWED = 3.0
"""How long such a delivery may take in all before the timeout counts as ignored."""

PAYLOADS = (
    b"# HELP up Whether the target is up\n# TYPE up gauge\nup 1.0\n",
    b"",
    bytes(range(256)) + "ünïcödé ✓\r\n\x00".encode(),
    b"x" * (2 * 1024 * 1024),
)
"""What ``exporter.delivers`` sends, in order: text, nothing, every byte, 2 MB."""


def load_exporter_class(name: str) -> type[Exporter]:
    """Return the exporter class called ``name``, or at the import path ``package.module:Class``."""
    if ":" not in name:
        found = available_exporters().get(name)
        if found is None:
            from metricache.plugins import missing

            raise ConfigError([missing("metricache_exporters", name)])
        return found
    module_name, _, attribute = name.partition(":")
    try:
        cls: object = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigError([f"cannot load the exporter {name!r}: {exc}"]) from None
    if not (isinstance(cls, type) and issubclass(cls, Exporter)):
        raise ConfigError([f"{name!r} is not a subclass of metricache.exporters.Exporter"])
    return cls


class ExporterSuite(KitSuite):
    """The exporter kit, run against one exporter class delivering to ``destination``."""

    kind = "exporter"

    def __init__(self, exporter: type[Exporter] | str, destination: Destination) -> None:
        self.exporter_class = (
            exporter if isinstance(exporter, type) else load_exporter_class(exporter)
        )
        self.destination = destination
        self.results: list[Result] = []
        self._requests = 0

    @property
    def name(self) -> str:
        """The exporter's name."""
        return self.exporter_class.name or self.exporter_class.__name__

    def build(self, options: Mapping[str, object]) -> Exporter:
        """Build the exporter from ``options`` as metricache does."""
        cls = self.exporter_class
        parsed: object = parse_options(cls.options_class, dict(options), where="export.options")
        return cls(parsed)

    def request(self) -> ExportRequest:
        """A request for one export (a new snapshot time each call)."""
        self._requests += 1
        return ExportRequest(
            format="prometheus",
            exporter=self.name,
            view=ViewKind.MERGED,
            snapshot_timestamp=1_718_000_000.0 + self._requests,
            strategy="distributed_atomic",
            content_type="text/plain; version=0.0.4; charset=utf-8",
            extension="prom",
        )

    def deliver(self, exporter: Exporter, payload: bytes) -> str:
        """Deliver ``payload`` inside the destination's ``around()``."""
        with self.destination.around():
            return exporter.deliver(payload, self.request())


def _built(suite: ExporterSuite, options: Mapping[str, object], what: str) -> Exporter:
    try:
        return suite.build(options)
    except (ConfigError, ValueError, TypeError) as exc:
        raise CheckFailed(f"it cannot be built with the options of {what}: {exc}") from None


def declaration(suite: ExporterSuite) -> None:
    """It has a name and is built from the destination's options."""
    name = suite.exporter_class.name
    expect(
        isinstance(name, str) and bool(re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name)),
        f"its name {name!r} is not a lowercase word (what users pass to --exporter)",
    )
    _built(suite, suite.destination.options(), "the live destination")


def delivers(suite: ExporterSuite) -> None:
    """Payloads (empty, binary, 2 MB) arrive byte for byte; each delivery says where it went."""
    exporter = _built(suite, suite.destination.options(), "the live destination")
    before = len(suite.destination.received())
    for payload in PAYLOADS:
        description = suite.deliver(exporter, payload)
        expect(
            isinstance(description, str) and bool(description.strip()),
            f"deliver returned {description!r}: it must return a description of where the "
            "export went (shown to users and logged)",
        )
    arrived = suite.destination.received()[before:]
    expect(
        len(arrived) == len(PAYLOADS),
        f"{len(PAYLOADS)} deliveries left {len(arrived)} payloads at the destination",
    )
    for sent, got in zip(PAYLOADS, arrived):
        expect(
            got == sent,
            f"the destination received {short(got)} for the payload {short(sent)}: an "
            "exporter delivers the bytes as they are",
        )


def unreachable(suite: ExporterSuite) -> None:
    """A destination that is down gives an error naming it, without the secret."""
    down = suite.destination.unreachable()
    if down is None:
        raise NotApplicable("the destination cannot be down")
    exporter = _built(suite, down.options, "a destination that is down")
    try:
        description = suite.deliver(exporter, PAYLOADS[0])
    except Exception as exc:
        message = str(exc)
    else:
        raise CheckFailed(
            f"delivering to a destination that is down returned {description!r} instead of "
            "raising: the failure would be neither counted nor retried"
        )
    expect(
        down.name in message,
        f"the error of a destination that is down does not name it ({down.name!r}): {message!r}",
    )
    secret = suite.destination.secret
    expect(
        not secret or secret not in message,
        f"the error of a destination that is down shows the secret: {message!r}",
    )


def no_secrets(suite: ExporterSuite) -> None:
    """Neither the description of a delivery nor the exporter's repr shows the secret."""
    secret = suite.destination.secret
    if not secret:
        raise NotApplicable("the destination uses no secret")
    exporter = _built(suite, suite.destination.options(), "the live destination")
    description = suite.deliver(exporter, PAYLOADS[0])
    expect(secret not in description, f"the description {description!r} shows the secret")
    for text in (repr(exporter), str(exporter)):
        expect(secret not in text, f"the exporter's repr {text!r} shows the secret")


def honours_timeout(suite: ExporterSuite) -> None:
    """A destination that never answers fails the delivery within the exporter's timeout."""
    options = suite.destination.silent(TIMEOUT)
    if options is None:
        raise NotApplicable("the exporter has no timeout")
    exporter = _built(suite, options, "a destination that never answers")
    started = time.monotonic()
    try:
        description = suite.deliver(exporter, PAYLOADS[0])
    except Exception:
        returned = None
    else:
        returned = description
    took = time.monotonic() - started
    expect(
        took <= ALLOWED,
        f"with a timeout of {TIMEOUT} s, delivering to a destination that never answers "
        f"took {took:.1f} s: the timeout is not honoured",
    )
    expect(
        returned is None,
        f"delivering to a destination that never answered returned {returned!r} instead of raising",
    )


EXPORTER_CHECKS: list[KitCheck[ExporterSuite]] = [
    KitCheck("exporter.declaration", declaration),
    KitCheck("exporter.delivers", delivers),
    KitCheck("exporter.unreachable", unreachable),
    KitCheck("exporter.no_secrets", no_secrets),
    KitCheck("exporter.timeout", honours_timeout),
]
"""The checks of the exporter kit, in the order they run."""

ExporterSuite.checks = EXPORTER_CHECKS
