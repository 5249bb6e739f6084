"""Load the documentation's generator scripts (they live in docs/, not in a package)."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from tests.docs.markdown import ROOT

__all__ = ["dataflow", "load_script", "reference_generator"]


def load_script(relative: str) -> ModuleType:
    """Import the script at ``ROOT/relative`` as a module (once)."""
    path = ROOT / relative
    name = "docs_script_" + path.stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # attrs classes need their module registered
    spec.loader.exec_module(module)
    return module


def reference_generator() -> ModuleType:
    """``docs/reference/generate.py``."""
    return load_script("docs/reference/generate.py")


def dataflow() -> ModuleType:
    """``docs/diagrams/dataflow.py``."""
    return load_script("docs/diagrams/dataflow.py")
