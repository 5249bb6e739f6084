"""Every distribution of the workspace is complete on its own and declares what it imports.

Each has a version, a README, a license file, classifiers and a ``py.typed`` marker,
and every third-party module its code imports comes from a distribution listed in
its dependencies (never one that happens to be installed because another package
needs it). ``.ci/wheels.sh`` installs the built wheels apart from the workspace.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from tests.core.plugin_packages import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

OPTIONAL_IMPORTS = {
    # The command hands over to the suite when it is installed, and says what to
    # install when it is not (tests/conformance/test_cli.py).
    ("metricache", "metricache_conformance"),
}


def members() -> list[Path]:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    found = []
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        found += [p for p in sorted(ROOT.glob(pattern)) if (p / "pyproject.toml").is_file()]
    return found


MEMBERS = members()


def project(member: Path) -> dict[str, object]:
    data = tomllib.loads((member / "pyproject.toml").read_text(encoding="utf-8"))
    found: dict[str, object] = data["project"]
    return found


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(member: Path) -> set[str]:
    names = set()
    for requirement in project(member).get("dependencies", []):  # type: ignore[attr-defined]
        names.add(normalise(re.split(r"[\s<>=!~;\[]", str(requirement), maxsplit=1)[0]))
    return names


def _typing_only(tree: ast.AST) -> set[int]:
    """The nodes inside ``if TYPE_CHECKING:`` blocks (imported for the type checker only)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            found |= {id(inner) for child in node.body for inner in ast.walk(child)}
    return found


def imported_modules(member: Path) -> Iterator[tuple[Path, str]]:
    """Every module the code of ``member`` imports when it runs (top-level names)."""
    for path in sorted((member / "src").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _typing_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield path, alias.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield path, node.module.split(".")[0]


def test_the_workspace_has_every_distribution() -> None:
    names = {project(m)["name"] for m in MEMBERS}
    assert {
        "metricache",
        "metricache-memory",
        "metricache-prometheus",
        "metricache-redis",
        "metricache-memcached",
        "metricache-file",
        "metricache-json",
        "metricache-csv",
        "metricache-conformance",
    } <= names


@pytest.mark.parametrize("member", MEMBERS, ids=[m.name for m in MEMBERS])
def test_a_distribution_carries_version_readme_license_classifiers_and_py_typed(
    member: Path,
) -> None:
    info = project(member)
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(info["version"]))
    assert (member / str(info["readme"])).is_file()
    assert info["license"] == "MIT"
    assert info["license-files"] == ["LICENSE"]
    assert (member / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    classifiers = info["classifiers"]
    assert isinstance(classifiers, list)
    assert "Typing :: Typed" in classifiers
    assert "Programming Language :: Python :: 3" in classifiers
    packages = [p for p in (member / "src").iterdir() if p.is_dir()]
    assert packages
    for package in packages:
        assert (package / "py.typed").is_file(), package


@pytest.mark.parametrize("member", MEMBERS, ids=[m.name for m in MEMBERS])
def test_a_distribution_declares_every_distribution_it_imports(member: Path) -> None:
    name = str(project(member)["name"])
    own = {p.name for p in (member / "src").iterdir() if p.is_dir()}
    dependencies = declared(member)
    providers = metadata.packages_distributions()
    missing = []
    for path, module in imported_modules(member):
        if module in own or module in sys.stdlib_module_names or module == "__future__":
            continue
        if (name, module) in OPTIONAL_IMPORTS:
            continue
        distributions = {normalise(d) for d in providers.get(module, [module])}
        if not distributions & dependencies:
            missing.append(f"{path.relative_to(ROOT)} imports {module} ({sorted(distributions)})")
    assert not missing, f"{name} does not declare: {sorted(set(missing))}"
