"""globs_overlap answers exactly whether two fnmatch globs share a name."""

from __future__ import annotations

import fnmatch
import itertools

from hypothesis import given
from hypothesis import strategies as st
from metricache.events.globs import globs_overlap

from tests.properties.strategies import QUICK

# Every character a piece below can name, and one none names (for negated classes).
ALPHABET = "ab][c"
# Two globs of at most three pieces share a name only if they share one of at most six
# characters: each piece but a star takes one character, a star can take none.
NAMES = ["".join(p) for n in range(7) for p in itertools.product(ALPHABET, repeat=n)]

pieces = st.sampled_from(["a", "b", "*", "?", "[ab]", "[!a]", "[a-b]", "[]a]", "[b-a]", "["])
globs = st.lists(pieces, max_size=3).map("".join)


@QUICK
@given(first=globs, second=globs)
def test_overlap_is_exactly_a_shared_name(first: str, second: str) -> None:
    shared = any(
        fnmatch.fnmatchcase(name, first) and fnmatch.fnmatchcase(name, second) for name in NAMES
    )
    assert globs_overlap(first, second) is shared
    assert globs_overlap(second, first) is shared


def test_the_cases_a_configuration_meets() -> None:
    assert globs_overlap("payment.*", "payment.captured")
    assert globs_overlap("*.failed", "task.*")
    assert not globs_overlap("task.*", "step.*")
    assert not globs_overlap("task.?", "task.completed")
    assert globs_overlap("task.[cs]*", "task.started")
    assert not globs_overlap("task.[!cs]*", "task.started")
