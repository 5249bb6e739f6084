"""The author's kits pass for every built-in format and exporter and the example plugins.

Each class is what a plugin's own tests would hold: ``FormatConformance`` with a
parse-back hook (the format's own parser, or prometheus_client's for the text
formats), ``ExporterConformance`` with the kit's destinations for the built-in
exporters and an ``HttpDestination`` for the example Pushgateway exporter.
"""

from __future__ import annotations

from collections.abc import Iterable

import metricache_csv
import metricache_json
import metricache_ndjson
from metricache_conformance import (
    Destination,
    ExporterConformance,
    FlatSample,
    FormatConformance,
    HttpDestination,
    flat_samples,
)
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as prometheus_families


class TestPrometheusFormat(FormatConformance):
    format = "prometheus"

    def parse_back(self, payload: bytes) -> Iterable[FlatSample]:
        for family in prometheus_families(payload.decode("utf-8")):
            for sample in family.samples:
                yield FlatSample(sample.name, sample.labels, sample.value)


class TestOpenMetricsFormat(FormatConformance):
    format = "openmetrics"

    def parse_back(self, payload: bytes) -> Iterable[FlatSample]:
        for family in openmetrics_families(payload.decode("utf-8")):  # type: ignore[no-untyped-call]
            for sample in family.samples:
                yield FlatSample(sample.name, sample.labels, sample.value)


class TestJsonFormat(FormatConformance):
    format = "json"

    def parse_back(self, payload: bytes) -> Iterable[FlatSample]:
        return flat_samples(metricache_json.parse(payload))


class TestCsvFormat(FormatConformance):
    format = "csv"

    def parse_back(self, payload: bytes) -> Iterable[FlatSample]:
        return flat_samples(metricache_csv.parse(payload))


class TestNdjsonExampleFormat(FormatConformance):
    format = "ndjson"

    def parse_back(self, payload: bytes) -> Iterable[FlatSample]:
        return [FlatSample(r.sample, r.labels, r.value) for r in metricache_ndjson.parse(payload)]


class TestFileExporter(ExporterConformance):
    exporter = "file"


class TestStdoutExporter(ExporterConformance):
    exporter = "stdout"


class TestHttpExporter(ExporterConformance):
    exporter = "http"


class TestPushgatewayExampleExporter(ExporterConformance):
    exporter = "pushgateway"

    def make_destination(self) -> Destination:
        return HttpDestination({"job": "conformance"}, token_option=None)
