"""Any label value either works everywhere or is refused at once, with a clear error.

Label values are text: every store keeps them as UTF-8 and every format writes
UTF-8. A value that cannot be encoded (a lone surrogate, as ``os.fsdecode`` makes of
a file name that is not UTF-8, or ``surrogateescape`` of stray bytes) is refused by
``labels()``: the programmer learns it at the line that made it. Accepted, it would
make every later sync of the instance fail, and every rendering of the registry.
"""

from __future__ import annotations

import os

import metricache
import pytest
from hypothesis import given
from hypothesis import strategies as st
from metricache.formats import render

from tests.properties.strategies import QUICK, label_values

surrogates = st.characters(categories=["Cs"])


@QUICK
@given(before=label_values, bad=surrogates, after=label_values)
def test_a_label_value_that_is_not_encodable_is_refused_naming_the_metric(
    before: str, bad: str, after: str
) -> None:
    registry = metricache.Registry()
    counter = metricache.Counter("files", "Files seen", ["name"], registry=registry)
    with pytest.raises(ValueError, match=r"metric 'files'.*UTF-8") as refused:
        counter.labels(before + bad + after)
    assert bad not in str(refused.value)  # the message stays printable
    with pytest.raises(ValueError, match="UTF-8"):
        counter.labels(name=before + bad + after)
    assert registry.snapshot()["files"].samples == ()


def test_a_refused_label_value_never_reaches_the_store_or_a_format() -> None:
    registry = metricache.Registry()
    seen = metricache.Counter("files", "Files seen", ["name"], registry=registry)
    syncer = metricache.Syncer(registry, metricache.open_store("memory"), interval=3600)
    seen.labels("fine").inc()
    undecodable = os.fsdecode(b"report-\xff.csv")  # a file name that is not UTF-8
    with pytest.raises(ValueError, match="UTF-8"):
        seen.labels(undecodable).inc()
    report = syncer.flush()
    assert report.ok, report.error
    assert b'files_total{name="fine"} 1.0' in render(registry.snapshot(), "prometheus")
    # The caller can keep such a name by choosing how to show it.
    seen.labels(os.fsencode(undecodable).decode("utf-8", "backslashreplace")).inc()
    assert syncer.flush().ok


@pytest.mark.parametrize(
    "declare",
    [
        lambda r: metricache.Counter("c", "help \udcff", registry=r),
        lambda r: metricache.Gauge("g", "help \ud800", registry=r),
        lambda r: metricache.Histogram("h", "\udfff", registry=r),
    ],
)
def test_help_text_that_is_not_encodable_is_refused_at_declaration(declare: object) -> None:
    assert callable(declare)
    with pytest.raises(ValueError, match="UTF-8"):
        declare(metricache.Registry())
