"""Formats and exporters that break one promise each fail the kit, naming the promise.

The broken plugins are in ``broken_plugins.py``; each keeps every other promise, so
the one check that fails is the one about what it breaks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from metricache_conformance import ExporterSuite, FlatSample, FormatSuite, HttpDestination, Outcome

from tests.conformance import broken_plugins
from tests.conformance.broken_plugins import parse_lines


def outcomes(suite: FormatSuite | ExporterSuite) -> dict[str, tuple[Outcome, str]]:
    report = suite.run_all()
    return {r.check: (r.outcome, r.message) for r in report.results}


def test_a_format_that_returns_text_fails_bytes() -> None:
    found = outcomes(FormatSuite(broken_plugins.TextFormat()))
    assert found["format.bytes"] == (
        Outcome.FAILED,
        "rendering the 'empty' snapshot returned str, not bytes",
    )
    assert found["format.renders"][0] is Outcome.PASSED


def test_a_format_that_numbers_its_renderings_fails_deterministic() -> None:
    found = outcomes(FormatSuite(broken_plugins.ClockFormat()))
    outcome, message = found["format.deterministic"]
    assert outcome is Outcome.FAILED
    assert re.fullmatch(
        r"the 'empty' snapshot and rendering it again gave different bytes \(from byte 1[23]: "
        r"b'\d+\\n', then b'\d+\\n'\)",
        message,
    ), message
    assert found["format.bytes"][0] is Outcome.PASSED


def test_a_content_type_outside_the_media_types_fails_declaration() -> None:
    found = outcomes(FormatSuite(broken_plugins.MislabelledFormat()))
    assert found["format.declaration"] == (
        Outcome.FAILED,
        "its content type 'text/plain; charset=utf-8' is not among its media types "
        "('text/x-lines',): a client asking for what it is sent would get 406",
    )


def test_a_format_that_raises_on_infinity_fails_renders_naming_the_snapshot() -> None:
    found = outcomes(FormatSuite(broken_plugins.FragileFormat()))
    assert found["format.renders"] == (
        Outcome.FAILED,
        "rendering the 'special_values' snapshot raised ValueError: cannot write nan",
    )


def test_a_format_that_does_not_escape_labels_fails_parse_back() -> None:
    suite = FormatSuite(broken_plugins.LinesFormat(), parse_back=parse_lines)
    found = outcomes(suite)
    outcome, message = found["format.parse_back"]
    assert outcome is Outcome.FAILED
    assert message.startswith("the bytes of the 'hostile_labels' snapshot do not parse back: ")
    assert [o for o, _ in found.values()].count(Outcome.FAILED) == 1
    # Without the hook the check is a named skip.
    skipped = FormatSuite(broken_plugins.LinesFormat()).run("format.parse_back")
    assert (skipped.outcome, skipped.message) == (
        Outcome.SKIPPED,
        "no parse-back hook given (define parse_back)",
    )


def test_a_parse_back_that_loses_a_sample_is_named() -> None:
    def lossy(payload: bytes) -> list[FlatSample]:
        return [s for s in parse_lines(payload) if s.labels.get("kind") != "minus_zero"]

    suite = FormatSuite(broken_plugins.LinesFormat(), parse_back=lossy)
    result = suite.run("format.parse_back")
    assert result.message == (
        "the 'special_values' snapshot does not read back as it was rendered: "
        "reading{kind='minus_zero'} is missing"
    )


@pytest.fixture
def destination() -> Iterator[HttpDestination]:
    with broken_plugins.destination() as found:
        yield found


def test_an_exporter_that_swallows_errors_fails_unreachable(
    destination: HttpDestination,
) -> None:
    found = outcomes(ExporterSuite(broken_plugins.SwallowingExporter, destination))
    assert found["exporter.unreachable"] == (
        Outcome.FAILED,
        "delivering to a destination that is down returned 'sent' instead of raising: the "
        "failure would be neither counted nor retried",
    )
    assert found["exporter.delivers"][0] is Outcome.PASSED


def test_an_exporter_that_shows_its_token_fails_unreachable(
    destination: HttpDestination,
) -> None:
    found = outcomes(ExporterSuite(broken_plugins.LeakyExporter, destination))
    outcome, message = found["exporter.unreachable"]
    assert outcome is Outcome.FAILED
    assert message.startswith("the error of a destination that is down shows the secret: ")
    assert destination.secret is not None
    assert destination.secret in message  # the kit shows what leaked, to the author
    assert found["exporter.no_secrets"][0] is Outcome.PASSED


def test_an_exporter_that_ignores_its_timeout_fails_timeout(
    destination: HttpDestination,
) -> None:
    result = ExporterSuite(broken_plugins.PatientExporter, destination).run("exporter.timeout")
    assert result.outcome is Outcome.FAILED
    assert re.fullmatch(
        r"with a timeout of 0\.5 s, delivering to a destination that never answers took "
        r"\d+\.\d s: the timeout is not honoured",
        result.message,
    ), result.message


def test_an_exporter_that_changes_the_payload_fails_delivers(
    destination: HttpDestination,
) -> None:
    result = ExporterSuite(broken_plugins.TrimmingExporter, destination).run("exporter.delivers")
    assert result.outcome is Outcome.FAILED
    assert result.message == (
        "the destination received b'# HELP up Whether the target is up\\n# TYP'... (57 bytes) "
        "for the payload b'# HELP up Whether the target is up\\n# TYP'... (58 bytes): an "
        "exporter delivers the bytes as they are"
    )
