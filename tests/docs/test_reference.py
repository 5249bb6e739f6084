"""The reference pages are what docs/reference/generate.py makes of the code, and complete.

Completeness is checked independently of the generator: every hookspec has its
section, every configuration key (walking the attrs classes here) its entry, every
command its section, and every documented environment variable really sets its key.
"""

from __future__ import annotations

import inspect
import re
import typing
from pathlib import Path
from typing import Any

import attrs
import pytest
from metricache import hookspecs
from metricache.cli.main import command_modules
from metricache.config import RESERVED_ENV, Config, load_config
from metricache.errors import ConfigError
from metricache.events.mapping import EventMapping
from metricache.events.settings import EventRoutingConfig
from metricache.store import Store
from metricache_conformance import all_checks
from metricache_conformance.exporter_suite import EXPORTER_CHECKS
from metricache_conformance.format_suite import FORMAT_CHECKS

from tests.docs.markdown import ROOT
from tests.docs.scripts import reference_generator

REFERENCE = ROOT / "docs" / "reference"


def page(name: str) -> str:
    return (REFERENCE / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "name", ["hooks.md", "configuration.md", "cli.md", "store-api.md", "conformance.md"]
)
def test_the_committed_page_is_a_fresh_generation(name: str) -> None:
    fresh: str = reference_generator().PAGES[name]()
    assert page(name) == fresh, (
        f"docs/reference/{name} is stale: run uv run python docs/reference/generate.py"
    )


def test_every_hookspec_has_its_section() -> None:
    hooks = sorted(name for name in dir(hookspecs) if name.startswith("metricache_"))
    sections = sorted(re.findall(r"^## (metricache_\w+)$", page("hooks.md"), re.M))
    assert hooks, "no hookspecs found"
    assert sections == hooks


def test_every_hook_section_shows_the_exact_signature_and_docstring() -> None:
    text = page("hooks.md")
    for name in (n for n in dir(hookspecs) if n.startswith("metricache_")):
        section = text.split(f"## {name}\n", 1)[1].split("\n## ", 1)[0]
        spec = getattr(hookspecs, name)
        params = ", ".join(f"{p}: {a}" for p, a in spec.__annotations__.items() if p != "return")
        assert f"def {name}({params}) -> {spec.__annotations__['return']}" in section
        # Every word of the docstring, in order (reST roles and ~module prefixes dropped).
        doc = re.sub(r"~[\w.]+\.", "", re.sub(r":\w+:", "", spec.__doc__ or ""))
        words = re.findall(r"[A-Za-z]+", doc)
        assert words
        pattern = r"[\W_]+".join(words)
        assert re.search(pattern, section), f"{name}: the docstring is not in its section"
        assert "```python\n" in section, f"{name} has no example"


VALIDATED_BY_EVENTS: dict[str, Any] = {
    "events": list[EventMapping],
    "event_routing": EventRoutingConfig,
}


def _keys(cls: type, prefix: str = "") -> list[tuple[str, Any]]:
    """Every leaf key of the configuration, with its annotation: the attrs classes walked."""
    found = []
    hints = typing.get_type_hints(cls)
    for field in attrs.fields(cls):
        if cls is Config and field.name == "source":
            continue  # where the file was read from; refused as a key (tested below)
        hint = hints[field.name]
        if cls is Config and field.name in VALIDATED_BY_EVENTS:
            hint = VALIDATED_BY_EVENTS[field.name]  # kept as read; metricache.events checks it
        args = typing.get_args(hint)
        if attrs.has(hint):
            found += _keys(hint, f"{prefix}{field.name}.")
        elif typing.get_origin(hint) is list and args and attrs.has(args[0]):
            found += _keys(args[0], f"{prefix}{field.name}[].")
        else:
            found.append((f"{prefix}{field.name}", hint))
    return found


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in page("configuration.md").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells
    return rows


def test_every_configuration_key_has_its_entry() -> None:
    keys = [path for path, _ in _keys(Config)]
    rows = _rows()
    assert len(keys) > 40
    missing = [key for key in keys if key not in rows]
    assert not missing, f"configuration keys without an entry: {missing}"
    for key in keys:
        assert rows[key][1], f"{key} has no type"
        assert rows[key][2], f"{key} has no default"
        assert rows[key][3], f"{key} has no environment variable column"
        assert len(rows[key]) == 5
        assert rows[key][4], f"{key} has no meaning"


def test_source_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "metricache.toml"
    path.write_text('source = "elsewhere"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="source: unknown key"):
        load_config(path, environ={})


_SAMPLES: dict[str, tuple[str, object]] = {
    "Seconds": ("12.5", 12.5),
    "Port": ("8080", 8080),
    "bool": ("true", True),
    "int": ("7", 7),
    "str": ("from-the-environment", "from-the-environment"),
}


def _sample(hint: Any) -> tuple[str, object]:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    name = getattr(base, "__name__", "")
    return _SAMPLES[name]


def _get(config: Config, path: str) -> object:
    value: object = config
    for part in path.split("."):
        value = getattr(value, part)
    return value


def test_each_documented_environment_variable_sets_its_key(tmp_path: Path) -> None:
    rows = _rows()
    empty = tmp_path / "metricache.toml"
    empty.write_text("", encoding="utf-8")
    checked = 0
    for path, hint in _keys(Config):
        env = rows[path][3].strip("`")
        if env == "none":
            continue
        if path in ("store.options", "export.options"):
            variable = env.replace("<OPTION>", "SOME_OPTION")
            config = load_config(empty, environ={variable: "x"})
            assert _get(config, path) == {"some_option": "x"}, variable
        else:
            text, expected = _sample(hint)
            config = load_config(empty, environ={env: text})
            assert _get(config, path) == expected, env
        checked += 1
    assert checked >= 20


def test_keys_documented_without_a_variable_have_none(tmp_path: Path) -> None:
    rows = _rows()
    empty = tmp_path / "metricache.toml"
    empty.write_text("", encoding="utf-8")
    for path, _ in _keys(Config):
        if rows[path][3] != "none":
            continue
        guess = "METRICACHE_" + path.replace("[]", "").replace(".", "_").upper()
        with pytest.raises(ConfigError, match="not a metricache setting"):
            load_config(empty, environ={guess: "1"})


def test_every_plugin_option_variable_sets_the_option(tmp_path: Path) -> None:
    empty = tmp_path / "metricache.toml"
    empty.write_text("", encoding="utf-8")
    rows = _rows()
    options = {k: v for k, v in rows.items() if k.startswith(("store.options.", "export.options."))}
    assert "store.options.url" in options
    assert "export.options.path" in options
    for path, cells in options.items():
        section, _, option = path.split(".", 2)
        config = load_config(empty, environ={cells[3].strip("`"): "x"})
        assert getattr(config, section).options[option] == "x", path


def test_every_reserved_variable_is_documented() -> None:
    text = page("configuration.md")
    for variable in RESERVED_ENV:
        assert f"| `{variable}` |" in text


def test_every_command_has_its_section() -> None:
    commands = sorted(
        m.__name__.rsplit(".", 1)[1].removesuffix("_command") for m in command_modules()
    )
    sections = sorted(re.findall(r"^## metricache (\w+)$", page("cli.md"), re.M))
    assert commands == sections


def test_every_public_store_method_has_its_section_with_signature_and_docstring() -> None:
    text = page("store-api.md")
    methods = [
        name
        for name, value in vars(Store).items()
        if inspect.isfunction(value) and not name.startswith("_")
    ]
    assert len(methods) > 20
    for name in methods:
        assert f"### `{name}`\n" in text, f"Store.{name} has no section"
        section = text.split(f"### `{name}`\n", 1)[1].split("\n### ", 1)[0]
        params = ", ".join(inspect.signature(getattr(Store, name)).parameters)
        assert re.search(rf"^{name}\(", section, re.M), name
        for param in params.split(", "):
            assert param in section, f"Store.{name}: {param} is not in its signature"
        first = (getattr(Store, name).__doc__ or "").strip().splitlines()[0]
        words = re.findall(r"[A-Za-z0-9]+", re.sub(r"~[\w.]+\.", "", re.sub(r":\w+:", "", first)))
        assert re.search(r"[\W_]+".join(words), section), f"Store.{name}: docstring missing"


def test_every_conformance_check_has_its_row() -> None:
    text = page("conformance.md")
    for name in [c.name for c in all_checks()] + [c.name for c in FORMAT_CHECKS + EXPORTER_CHECKS]:
        assert f"| `{name}` |" in text, name
