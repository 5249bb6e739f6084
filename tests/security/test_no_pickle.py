"""No pickle, ever: nothing that can run code while decoding is used by any metricache package.

Whatever crosses a store is plain bytes parsed defensively (JSON, decimal integers,
the file store's checked records). This test reads the source of every installed
distribution whose name starts with ``metricache`` and fails on any use of ``pickle``,
``marshal``, ``shelve`` and their kin, ``eval``, ``exec``, or YAML's unsafe loader.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

FORBIDDEN_MODULES = {
    "pickle",
    "cPickle",
    "_pickle",
    "marshal",
    "shelve",
    "dill",
    "cloudpickle",
    "jsonpickle",
    "joblib",
}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def metricache_modules() -> dict[str, Path]:
    """Every top-level package of an installed ``metricache*`` distribution, with its path."""
    found: dict[str, Path] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"] or ""
        if not name.lower().startswith("metricache"):
            continue
        for module in (dist.read_text("top_level.txt") or "").split() or [
            name.replace("-", "_").lower()
        ]:
            spec = importlib.util.find_spec(module)
            if spec is not None and spec.submodule_search_locations:
                found[module] = Path(next(iter(spec.submodule_search_locations)))
    return found


def uses(path: Path) -> list[str]:
    """What ``path`` does that it must not, as ``file:line: what`` strings."""
    tree = ast.parse(path.read_text("utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module.split(".")[0]]
        bad = FORBIDDEN_MODULES.intersection(names)
        if bad and isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(f"{path}:{node.lineno}: imports {', '.join(sorted(bad))}")
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_MODULES:
            found.append(f"{path}:{node.lineno}: uses {node.id}")
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{path}:{node.lineno}: calls {func.id}()")
            if (
                isinstance(func, ast.Attribute)
                and func.attr in {"load", "load_all"}
                and getattr(func.value, "id", "") == "yaml"
            ):
                found.append(f"{path}:{node.lineno}: calls yaml.{func.attr}()")
            owner = getattr(func, "value", None)
            if (
                isinstance(func, ast.Attribute)
                and func.attr in {"loads", "load"}
                and isinstance(owner, ast.Name)
                and owner.id in FORBIDDEN_MODULES
            ):
                found.append(f"{path}:{node.lineno}: calls {owner.id}.{func.attr}()")
    return found


def test_every_metricache_package_is_found() -> None:
    modules = metricache_modules()
    for expected in (
        "metricache",
        "metricache_redis",
        "metricache_memcached",
        "metricache_file",
        "metricache_memory",
        "metricache_prometheus",
        "metricache_json",
        "metricache_csv",
        "metricache_conformance",
    ):
        assert expected in modules


@pytest.mark.parametrize("module", sorted(metricache_modules()))
def test_no_pickle_marshal_eval_or_exec_in(module: str) -> None:
    root = metricache_modules()[module]
    sources = sorted(root.rglob("*.py"))
    assert sources
    problems = [problem for source in sources for problem in uses(source)]
    assert problems == []


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nfrom marshal import loads\nimport yaml\n"
        "x = eval('1')\nexec('y = 2')\nyaml.load('a')\npickle.loads(b'')\n"
    )
    found = uses(bad)
    assert sorted(p.split(": ", 1)[1] for p in found) == [
        "calls eval()",
        "calls exec()",
        "calls pickle.loads()",
        "calls yaml.load()",
        "imports marshal",
        "imports pickle",
        "uses pickle",
    ]
