"""Whatever a configuration holds, loading it gives a Config or a ConfigError, nothing else.

Hypothesis writes TOML documents built from metricache's own sections and keys mixed
with unknown ones, every TOML value type (huge integers, NaN and infinities, dates,
arrays, inline tables, text with control characters), random bytes and random text,
as ``metricache.toml`` and as ``pyproject.toml``, and random ``METRICACHE_*``
environment variables. :func:`metricache.config.load_config` must answer each with
a :class:`~metricache.config.Config` or a :class:`~metricache.errors.ConfigError`
listing its problems as text.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from metricache.config import Config, load_config
from metricache.errors import ConfigError
from metricache.events import event_settings

from tests.properties.strategies import QUICK

SECTIONS = {
    "store": ["name", "options"],
    "sync": ["interval", "retention", "liveness_ttl", "local_state_ttl", "namespace"],
    "export": [
        "format",
        "exporter",
        "options",
        "interval",
        "safety_margin",
        "timeout",
        "retries",
        "backoff_base",
        "backoff_cap",
        "lease_ttl",
    ],
    "serve": ["host", "port", "token_file"],
    "event_routing": ["default_mappings", "conventions", "labels", "queue_size", "rules"],
}
ENVIRONMENT = [
    "METRICACHE_STORE",
    "METRICACHE_STORE_URL",
    "METRICACHE_SYNC_INTERVAL",
    "METRICACHE_SYNC_RETENTION",
    "METRICACHE_SYNC_NAMESPACE",
    "METRICACHE_SERVE_PORT",
    "METRICACHE_EXPORT_RETRIES",
    "METRICACHE_EXPORT_OPTION_URL",
    "METRICACHE_INSTANCE_ID",
    "METRICACHE_CONFIG_TYPO",
]

text = st.text(max_size=20)
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    text,
    st.datetimes(min_value=datetime.datetime(1, 1, 1), max_value=datetime.datetime(9999, 1, 1)),
    st.dates(),
    st.sampled_from(["redis", "memory", "file", "30", "5s", "-1", "0", "1e400", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A configuration document: metricache's sections and keys, some others, any values."""
    doc: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from([*SECTIONS, "unknown"]), unique=True)):
        known = SECTIONS.get(section, ["unknown_key"])
        keys = draw(st.lists(st.sampled_from(known) | text, unique=True, max_size=5))
        doc[section] = {key: draw(values) for key in keys}
    if draw(st.booleans()):
        doc["instance_id"] = draw(values)
    if draw(st.booleans()):
        doc["events"] = draw(st.lists(st.dictionaries(text, values, max_size=4), max_size=2))
    return doc


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if _BARE.fullmatch(key) else _string(key)


def _string(value: str) -> str:
    # JSON's escapes are TOML's, except that TOML wants U+007F escaped too and has no
    # surrogate escapes (json.dumps makes those only for ensure_ascii=True).
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    """Write one value as TOML (inline tables for mappings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, dict)
    return "{" + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(doc: dict[str, Any], prefix: str = "") -> str:
    """Write a document: top-level scalars first, then one table per section."""
    lines = [f"{_key(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for section, table in doc.items():
        if isinstance(table, dict):
            lines.append(f"[{prefix}{_key(section)}]")
            lines += [f"{_key(k)} = {toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def loads_or_refuses(path: Path, environ: dict[str, str] | None = None) -> None:
    """Load ``path``: a Config, or a ConfigError whose problems are lines of text.

    The events package validates ``[[events]]`` and ``[event_routing]`` itself, when a
    router is built from them: the same holds for it.
    """
    refused: ConfigError | None = None
    try:
        config = load_config(path, environ=environ or {})
        assert isinstance(config, Config)
        event_settings(config, check_handlers=False)
    except ConfigError as exc:
        refused = exc
    else:
        return
    assert refused.problems
    assert all(isinstance(p, str) and p for p in refused.problems)
    assert str(refused)


@pytest.fixture(scope="module")
def directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config-fuzz")


@QUICK
@given(doc=documents())
def test_any_toml_document_loads_or_is_refused_with_a_config_error(
    directory: Path, doc: dict[str, Any]
) -> None:
    path = directory / "metricache.toml"
    path.write_text(toml_document(doc), "utf-8")
    loads_or_refuses(path)


@QUICK
@given(doc=documents())
def test_any_tool_metricache_table_loads_or_is_refused_with_a_config_error(
    directory: Path, doc: dict[str, Any]
) -> None:
    path = directory / "pyproject.toml"
    body = toml_document(doc, prefix="tool.metricache.")
    top = [line for line in body.splitlines() if line and not line.startswith("[")]
    # Top-level keys of the document go in [tool.metricache] itself.
    rest = body.splitlines()[len(top) :]
    path.write_text("\n".join(["[tool.metricache]", *top, *rest]) + "\n", "utf-8")
    loads_or_refuses(path)


@QUICK
@given(data=st.binary(max_size=300))
def test_any_bytes_load_or_are_refused_with_a_config_error(directory: Path, data: bytes) -> None:
    path = directory / "metricache.toml"
    path.write_bytes(data)
    loads_or_refuses(path)


@QUICK
@given(body=st.text(max_size=300))
def test_any_text_loads_or_is_refused_with_a_config_error(directory: Path, body: str) -> None:
    path = directory / "metricache.toml"
    path.write_bytes(body.encode("utf-8", "surrogatepass"))
    loads_or_refuses(path)


@QUICK
@given(
    environ=st.dictionaries(
        st.sampled_from(ENVIRONMENT) | text.map(lambda s: "METRICACHE_" + s.upper()),
        st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
        max_size=5,
    )
)
def test_any_environment_loads_or_is_refused_with_a_config_error(
    directory: Path, environ: dict[str, str]
) -> None:
    path = directory / "metricache.toml"
    path.write_text("", "utf-8")
    loads_or_refuses(path, environ)
