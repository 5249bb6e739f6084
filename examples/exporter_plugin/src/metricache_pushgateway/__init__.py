"""Push metricache exports to a Prometheus Pushgateway.

A worked example of an exporter plugin (``docs/plugins/writing-an-exporter.md``).
Each delivery PUTs the Prometheus text of the exported view to
``URL/metrics/job/JOB[/LABEL/VALUE...]``, which replaces every metric the
Pushgateway held for that group. A value that is empty, or holds anything but
letters, digits and ``-._~``, travels in the Pushgateway's ``@base64`` form, so a
``/`` in a value can never add a path segment.
"""

from __future__ import annotations

import base64
import re
import urllib.request
from collections.abc import Iterable

import attrs
from metricache import hookimpl
from metricache.exporters import Exporter, ExportRequest
from metricache.masking import mask_url

__all__ = ["PushgatewayExporter", "PushgatewayOptions", "grouping_path", "metricache_exporters"]

_PLAIN = re.compile(r"[A-Za-z0-9_.~-]+")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _http_url(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"url: expected an http:// or https:// URL, got {value!r}")


def _not_empty(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError("job: expected a job name, got an empty string")


def _grouping(text: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not _LABEL_NAME.fullmatch(name.strip()):
            raise ValueError(f"grouping: expected LABEL=VALUE, got {line!r}")
        pairs.append((name.strip(), value))
    return tuple(pairs)


@attrs.frozen(kw_only=True)
class PushgatewayOptions:
    """Options of the ``pushgateway`` exporter.

    ``url``: the Pushgateway, e.g. ``http://pushgateway:9091``. ``job``: the job
    label of the group. ``grouping``: further grouping labels, one ``LABEL=VALUE``
    per line (give ``--exporter-option grouping=...`` once per label).
    ``timeout``: seconds for connecting and for the answer.
    """

    url: str = attrs.field(validator=_http_url)
    job: str = attrs.field(validator=_not_empty)
    grouping: str = ""
    timeout: float = 10.0

    def __attrs_post_init__(self) -> None:
        _grouping(self.grouping)  # a malformed line fails when the exporter is built


def _segment(name: str, value: str) -> str:
    if _PLAIN.fullmatch(value):
        return f"{name}/{value}"
    encoded = base64.urlsafe_b64encode(value.encode("utf-8")).decode("ascii")
    return f"{name}@base64/{encoded or '='}"


def grouping_path(job: str, grouping: Iterable[tuple[str, str]] = ()) -> str:
    """Return ``/metrics/job/JOB/...``: the Pushgateway path of a group."""
    segments = [_segment("job", job), *(_segment(n, v) for n, v in grouping)]
    return "/metrics/" + "/".join(segments)


class PushgatewayExporter(Exporter):
    """PUTs each export to a Pushgateway group (Prometheus text only)."""

    name = "pushgateway"
    options_class = PushgatewayOptions
    options: PushgatewayOptions

    def deliver(self, payload: bytes, request: ExportRequest) -> str:
        """Replace the group's metrics with ``payload``; return where it went."""
        if request.format != "prometheus":
            raise ValueError(f"the Pushgateway takes the prometheus format, not {request.format!r}")
        url = self.options.url.rstrip("/") + grouping_path(
            self.options.job, _grouping(self.options.grouping)
        )
        put = urllib.request.Request(
            url, data=payload, method="PUT", headers={"Content-Type": request.content_type}
        )
        where = mask_url(url)  # a password in the URL is never shown
        # urlopen raises for 4xx and 5xx answers, and on a timeout; its messages do not
        # say where, so the error does. The caller logs, counts and retries.
        try:
            with urllib.request.urlopen(put, timeout=self.options.timeout) as response:
                return f"{where} ({response.status})"
        except OSError as exc:
            raise OSError(f"PUT {where} failed: {getattr(exc, 'reason', exc)}") from None


@hookimpl
def metricache_exporters() -> Iterable[type[Exporter]]:
    """Offer the ``pushgateway`` exporter to metricache."""
    return [PushgatewayExporter]
