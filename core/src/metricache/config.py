"""Configuration: one TOML file, ``METRICACHE_*`` environment variables on top.

The file is ``metricache.toml``, or the ``[tool.metricache]`` table of
``pyproject.toml``; :func:`load_config` looks for them in the working directory
unless a path is given. The result is a tree of frozen attrs classes. Every problem
of an invalid file (unknown keys, wrong types, out-of-range values) is reported at
once, each prefixed by its path: ``sync.interval: expected a number, got 'fast'``.

Environment variables name a key by its path in upper case: ``METRICACHE_SYNC_INTERVAL``
sets ``sync.interval``, ``METRICACHE_STORE`` sets ``store.name`` and
``METRICACHE_STORE_<OPTION>`` sets ``store.options.<option>``.
"""

from __future__ import annotations

import math
import os
import sys
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NewType, TypeVar, Union, cast

import attrs
import cattrs
from cattrs.errors import ForbiddenExtraKeysError

from metricache.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "ENV_PREFIX",
    "RESERVED_ENV",
    "Config",
    "Count",
    "ExportConfig",
    "Fraction",
    "OptionValue",
    "Port",
    "Seconds",
    "ServeConfig",
    "StoreConfig",
    "SyncConfig",
    "Table",
    "coerce_text",
    "find_config_file",
    "load_config",
    "parse_options",
    "structure",
]

ENV_PREFIX = "METRICACHE_"
RESERVED_ENV = frozenset(
    {"METRICACHE_PLUGINS", "METRICACHE_TRACE_HOOKS", "METRICACHE_CONFIG", "METRICACHE_SERVE_TOKEN"}
)
"""Environment variables with a meaning of their own, not configuration keys."""

Seconds = NewType("Seconds", float)
"""A duration in seconds, > 0."""
Port = NewType("Port", int)
"""A TCP port, 0 to 65535 (0: any free port)."""
Count = NewType("Count", int)
"""A whole number >= 1."""
Fraction = NewType("Fraction", float)
"""A number from 0 to 1."""
OptionValue = NewType("OptionValue", object)
"""A plugin option: a string, number or boolean."""
Table = NewType("Table", dict[str, Any])
"""A TOML table kept as read, for the package that owns it to validate when used."""

T = TypeVar("T")


# -- the configuration tree -------------------------------------------------------------


@attrs.frozen(kw_only=True)
class StoreConfig:
    """``[store]``: which store plugin to open, and its options."""

    name: str = "memory"
    options: dict[str, OptionValue] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class SyncConfig:
    """``[sync]``: how often deltas go to the store, and how long the store keeps them.

    ``liveness_ttl`` is how long an instance's gauges outlive its last sync
    (default: three intervals). ``namespace`` prefixes every key metricache writes.
    ``local_state_ttl`` is how long a ``local_only`` store keeps an instance's saved
    view after its last sync (default one day): an instance restarted with the same
    id within it resumes its counters.
    """

    interval: Seconds = Seconds(30.0)
    retention: Seconds = Seconds(300.0)
    liveness_ttl: Seconds | None = None
    local_state_ttl: Seconds = Seconds(86400.0)
    namespace: str = "metricache"


@attrs.frozen(kw_only=True)
class ExportConfig:
    """``[export]``: what ``metricache export`` and the export coordinator produce.

    The coordinator's timing (see ``docs/export-coordination.md``): an export every
    ``interval`` seconds (default: ``sync.retention - safety_margin - timeout``),
    each allowed ``timeout`` seconds; failed ones retried ``retries`` times after
    ``backoff_base`` seconds, doubling, at most ``backoff_cap``; a dead lease holder
    replaced after ``lease_ttl`` seconds (default: ``timeout``). With ``schedule =
    true``, :func:`metricache.start` runs the coordinator in process next to the
    syncer (``metricache export --schedule`` runs it in the foreground). An empty
    ``format`` is the default format: ``prometheus`` when installed, else the first
    installed format by name.
    """

    schedule: bool = False
    format: str = ""
    exporter: str = "stdout"
    options: dict[str, OptionValue] = attrs.field(factory=dict)
    interval: Seconds | None = None
    safety_margin: Seconds = Seconds(60.0)
    timeout: Seconds = Seconds(120.0)
    retries: int = 3
    backoff_base: Seconds = Seconds(30.0)
    backoff_cap: Seconds = Seconds(600.0)
    lease_ttl: Seconds | None = None


@attrs.frozen(kw_only=True)
class ServeConfig:
    """``[serve]``: where ``metricache serve`` listens.

    ``token_file``: a file of bearer tokens, one per line; with it (or with tokens in
    ``METRICACHE_SERVE_TOKEN``) every request to ``/metrics`` needs one.
    """

    host: str = "127.0.0.1"
    port: Port = Port(9464)
    token_file: str = ""


@attrs.frozen(kw_only=True)
class Config:
    """The whole configuration. ``instance_id`` defaults to ``hostname-pid``.

    ``events`` (the ``[[events]]`` tables) and ``event_routing`` are kept as read:
    :mod:`metricache.events` validates them, by their paths in the file, when the
    event router is built from them (:func:`metricache.start`, ``metricache status``),
    so recording a metric never loads the events package.
    """

    instance_id: str | None = None
    store: StoreConfig = attrs.field(factory=StoreConfig)
    sync: SyncConfig = attrs.field(factory=SyncConfig)
    export: ExportConfig = attrs.field(factory=ExportConfig)
    serve: ServeConfig = attrs.field(factory=ServeConfig)
    events: list[Table] = attrs.field(factory=list)
    event_routing: Table = attrs.field(factory=lambda: Table({}))
    source: str = attrs.field(default="", eq=False)


# -- structuring with exact messages ------------------------------------------------------


def _describe(value: object) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {_describe(value)}")
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a whole number, got {_describe(value)}")
    return value


def _seconds(value: object, _: object) -> Seconds:
    number = _number(value)
    if number <= 0:
        raise ValueError(f"expected a number of seconds > 0, got {value!r}")
    return Seconds(number)


def _port(value: object, _: object) -> Port:
    number = _integer(value)
    if not 0 <= number <= 65535:
        raise ValueError(f"expected a port from 0 to 65535, got {value!r}")
    return Port(number)


def _count(value: object, _: object) -> Count:
    number = _integer(value)
    if number < 1:
        raise ValueError(f"expected a whole number >= 1, got {value!r}")
    return Count(number)


def _fraction(value: object, _: object) -> Fraction:
    number = _number(value)
    if not 0 <= number <= 1:
        raise ValueError(f"expected a number from 0 to 1, got {value!r}")
    return Fraction(number)


def _option_value(value: object, _: object) -> OptionValue:
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"expected a string, number or boolean, got {_describe(value)}")
    return OptionValue(value)


def _table(value: object, _: object) -> Table:
    if not isinstance(value, dict):
        raise ValueError(f"expected a table, got {_describe(value)}")
    return Table(value)


def _string(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_describe(value)}")
    return value


def _boolean(value: object, _: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {_describe(value)}")
    return value


def _float(value: object, _: object) -> float:
    return _number(value)


def _int(value: object, _: object) -> int:
    return _integer(value)


def make_converter() -> cattrs.Converter:
    """Return the converter every configuration class is structured with."""
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    conv.register_structure_hook(Seconds, _seconds)
    conv.register_structure_hook(Port, _port)
    conv.register_structure_hook(Count, _count)
    conv.register_structure_hook(Fraction, _fraction)
    conv.register_structure_hook(OptionValue, _option_value)
    conv.register_structure_hook(Table, _table)
    conv.register_structure_hook(str, _string)
    conv.register_structure_hook(bool, _boolean)
    conv.register_structure_hook(float, _float)
    conv.register_structure_hook(int, _int)
    return conv


_CONVERTER = make_converter()


def register_structure_hook(typ: Any, hook: Callable[[Any, Any], Any]) -> None:
    """Teach the configuration converter a new type (used by modules adding sections)."""
    _CONVERTER.register_structure_hook(typ, hook)


def _format_exception(exc: BaseException, typ: object) -> str:
    if isinstance(exc, ForbiddenExtraKeysError):
        # structure() splits this into one problem per key, each at its own path.
        return _UNKNOWN_KEYS + "\x00".join(sorted(exc.extra_fields))
    if isinstance(exc, ValueError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, (TypeError, AttributeError)):
        expected = "a list" if _origin_is_list(typ) else "a table"
        return f"expected {expected}"
    if isinstance(exc, KeyError):
        return f"missing required key {exc.args[0]!r}"
    return f"{type(exc).__name__}: {exc}"


_UNKNOWN_KEYS = "\x00unknown keys\x00"


def _origin_is_list(typ: object) -> bool:
    return typing.get_origin(typ) in (list, tuple)


def _render_path(path: str) -> str:
    # cattrs says "$.sync.interval" and "$.events[0].name"; the file says sync.interval.
    if path.startswith("$."):
        path = path[2:]
    elif path.startswith("$"):
        path = path[1:]
    return path.replace("['", ".").replace("']", "")


def structure(
    data: Mapping[str, Any],
    cls: type[T],
    *,
    root: str = "",
    converter: cattrs.Converter | None = None,
) -> T:
    """Structure ``data`` into ``cls`` or raise ConfigError listing every problem.

    ``root`` prefixes every path (``store.options``), so a nested structure reports
    where it sits in the file. ``converter``: one made by :func:`make_converter` and
    taught more types (default: the configuration's own).
    """
    try:
        return (converter or _CONVERTER).structure(dict(data), cls)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        problems = []
        for message in cattrs.transform_error(exc, path="$", format_exception=_format_exception):
            text, _, path = message.rpartition(" @ ")
            where = _render_path(path)
            if text.startswith(_UNKNOWN_KEYS):
                for key in text[len(_UNKNOWN_KEYS) :].split("\x00"):
                    problems.append(f"{'.'.join(p for p in (root, where, key) if p)}: unknown key")
                continue
            full = ".".join(p for p in (root, where) if p)
            problems.append(f"{full}: {text}" if full else text)
        raise ConfigError(problems) from None


# -- text values (environment variables, --option key=value) ---------------------------------


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _unwrap_optional(typ: Any) -> Any:
    origin = typing.get_origin(typ)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return typ


def _supertype(typ: Any) -> Any:
    while hasattr(typ, "__supertype__"):
        typ = typ.__supertype__
    return typ


def coerce_text(text: str, typ: Any) -> object:
    """Turn the text of an environment variable or ``--option`` into ``typ``'s kind.

    Numbers and booleans are parsed; anything unparseable is returned as the text,
    so structuring reports it with its path (``expected a number, got 'fast'``).
    """
    base = _supertype(_unwrap_optional(typ))
    if base is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        return text
    if base is int:
        try:
            return int(text.strip())
        except ValueError:
            return text
    if base is float:
        try:
            return float(text.strip())
        except ValueError:
            return text
    if base is object:  # OptionValue: guess the most specific kind
        for attempt in (int, float):
            try:
                return attempt(text.strip())
            except ValueError:
                pass
        lowered = text.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        return text
    if typing.get_origin(base) in (list, tuple):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def parse_options(cls: type[T], options: Mapping[str, object], *, where: str = "options") -> T:
    """Structure plugin options (from TOML, or text from ``--option``) into ``cls``.

    Text values are first coerced to the field's type; unknown and invalid options
    raise ConfigError naming ``where.option``.
    """
    fields = {f.name: f for f in attrs.fields(cls)} if attrs.has(cls) else {}
    if not fields:
        if options:
            names = ", ".join(repr(k) for k in sorted(options))
            raise ConfigError([f"{where}: unknown option(s) {names}; this plugin takes none"])
        return cls()
    prepared: dict[str, object] = {}
    hints = typing.get_type_hints(cls)
    for key, value in options.items():
        name = key.replace("-", "_")
        if isinstance(value, str) and name in fields:
            prepared[name] = coerce_text(value, hints[name])
        else:
            prepared[name] = value
    return structure(prepared, cls, root=where)


# -- finding and reading the file ---------------------------------------------------------


def find_config_file(directory: Path | None = None) -> Path | None:
    """Return ``metricache.toml``, else a ``pyproject.toml`` with ``[tool.metricache]``."""
    base = directory or Path.cwd()
    candidate = base / "metricache.toml"
    if candidate.is_file():
        return candidate
    pyproject = base / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError):
            return None
        if isinstance(data.get("tool"), dict) and "metricache" in data["tool"]:
            return pyproject
    return None


def read_config_data(path: Path) -> dict[str, Any]:
    """Return the metricache table of a TOML file (``[tool.metricache]`` for pyproject)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror or exc}"], str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError(["the file is not UTF-8 text"], str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"invalid TOML: {exc}"], str(path)) from None
    if path.name == "pyproject.toml":
        table = data.get("tool", {}).get("metricache", {})
        if not isinstance(table, dict):
            raise ConfigError(["tool.metricache: expected a table"], str(path))
        return cast("dict[str, Any]", table)
    return data


_SECTIONS: dict[str, type] = {
    "sync": SyncConfig,
    "export": ExportConfig,
    "serve": ServeConfig,
}


def _env_overrides(
    environ: Mapping[str, str],
) -> tuple[dict[str, Any], list[str], dict[str, str]]:
    """Translate ``METRICACHE_*`` variables into a nested dict of overrides.

    Also returns the problems (each naming its variable) and, for every key a
    variable set, the variable (``sync.interval`` -> ``METRICACHE_SYNC_INTERVAL``).
    """
    overrides: dict[str, Any] = {}
    problems: list[str] = []
    origins: dict[str, str] = {}
    hints_by_section = {name: typing.get_type_hints(cls) for name, cls in _SECTIONS.items()}
    for var in sorted(environ):
        if not var.startswith(ENV_PREFIX) or var in RESERVED_ENV:
            continue
        value = environ[var]
        key = var[len(ENV_PREFIX) :].lower()
        if key == "instance_id":
            overrides["instance_id"] = value
            origins["instance_id"] = var
            continue
        if key in ("store", "store_name"):
            overrides.setdefault("store", {})["name"] = value
            origins["store.name"] = var
            continue
        if key.startswith("store_"):
            option = key[len("store_") :]
            overrides.setdefault("store", {}).setdefault("options", {})[option] = coerce_text(
                value, OptionValue
            )
            origins[f"store.options.{option}"] = var
            continue
        section, _, field = key.partition("_")
        if section == "export" and field.startswith("option_"):
            option = field[len("option_") :]
            overrides.setdefault("export", {}).setdefault("options", {})[option] = coerce_text(
                value, OptionValue
            )
            origins[f"export.options.{option}"] = var
            continue
        hints = hints_by_section.get(section)
        if hints is None or field not in hints:
            problems.append(
                f"{var}: not a metricache setting (an environment variable; "
                "see the configuration reference for the variables)"
            )
            continue
        overrides.setdefault(section, {})[field] = coerce_text(value, hints[field])
        origins[f"{section}.{field}"] = var
    return overrides, problems, origins


def _blame(problem: str, origins: Mapping[str, str]) -> tuple[str, bool]:
    """Name the variable behind a problem at a key a variable set; say whether one did."""
    path, sep, text = problem.partition(": ")
    variable = origins.get(path) if sep else None
    if variable is None:
        return problem, False
    return f"{variable} (sets {path}): {text}", True


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read the configuration: file (given or found), then environment, then overrides.

    ``overrides`` is a nested mapping applied last (the command line uses it).
    """
    env = os.environ if environ is None else environ
    if path is None and env.get("METRICACHE_CONFIG"):
        path = env["METRICACHE_CONFIG"]
    file_path = Path(path) if path is not None else find_config_file()
    data: dict[str, Any] = {}
    source = ""
    if file_path is not None:
        if not file_path.is_file():
            raise ConfigError(["no such file"], str(file_path))
        data = read_config_data(file_path)
        source = str(file_path)
    if "source" in data:
        # ``source`` records where the configuration came from; it is not a key.
        raise ConfigError(["source: unknown key"], source)
    env_data, problems, origins = _env_overrides(env)
    data = _merge(data, env_data)
    if overrides:
        data = _merge(data, overrides)
    in_file: list[str] = []
    try:
        config = structure(data, Config)
    except ConfigError as exc:
        for problem in exc.problems:
            blamed, by_variable = _blame(problem, origins)
            (problems if by_variable else in_file).append(blamed)
    if in_file and not problems:
        raise ConfigError(in_file, source)
    if problems:
        # A variable's problem names the variable, never the file; the file is named
        # on the problems that are in it.
        where = f"{source}: " if source else ""
        raise ConfigError(problems + [where + p for p in in_file])
    return attrs.evolve(config, source=source)
