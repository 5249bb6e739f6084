"""``import metricache`` against ``import prometheus_client``, side by side in one run.

Run it with ``uv run python bench/imports.py``. Each measurement is a fresh
interpreter that times one import statement with ``time.perf_counter`` (interpreter
start-up excluded, so only the import is compared). Rounds alternate the probes, in a
new order each round, so machine noise hits all of them; the script prints the
median and the best of the rounds, and the ratio of the medians to
``import prometheus_client``.

Besides the two imports it times what loads later, on first use, each after
``import metricache``: ``metricache.start`` (configuration, store plugins, syncer),
and the event package's own modules (cattrs and the plugin manager loaded first),
which ``metricache.config`` still imports today and ``start()`` will not need once
the configuration no longer imports them.
It also lists the metricache modules ``import metricache`` loads.

This is a benchmark, not a test: it reports and never asserts a speed.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import subprocess
import sys
from importlib import metadata

PROBES: dict[str, tuple[str, str]] = {
    # name: (setup, the import timed)
    "import prometheus_client": ("", "import prometheus_client"),
    "import metricache": ("", "import metricache"),
    "then metricache.start (config, plugins, syncer)": (
        "import metricache",
        "metricache.start",
    ),
    "then the events package's own modules": (
        "import metricache, cattrs, metricache.plugins",
        "import metricache.events",
    ),
}

_TIMER = """\
import time
{setup}
started = time.perf_counter()
{statement}
print(time.perf_counter() - started)
"""


def measure(setup: str, statement: str) -> float:
    """Seconds one fresh interpreter takes to run ``statement`` after ``setup``."""
    code = _TIMER.format(setup=setup, statement=statement)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return float(done.stdout.strip())


def loaded_modules() -> list[str]:
    """The metricache modules ``import metricache`` loads."""
    code = (
        "import sys, json; import metricache; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'metricache')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    found: list[str] = json.loads(done.stdout)
    return found


def main() -> int:
    """Measure, then print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--rounds", type=int, default=31, help="measurements per probe (31)")
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in PROBES}
    order = list(PROBES)
    rng = random.Random(12)
    for _ in range(args.rounds):
        rng.shuffle(order)
        for name in order:
            times[name].append(measure(*PROBES[name]))
    peer = statistics.median(times["import prometheus_client"])
    print(
        f"CPython {platform.python_version()} on {platform.machine()}, "
        f"prometheus_client {metadata.version('prometheus-client')}, "
        f"metricache {metadata.version('metricache')}; {args.rounds} rounds each"
    )
    print(f"{'probe':<50} {'median':>9} {'best':>9} {'ratio':>7}")
    for name, found in times.items():
        median = statistics.median(found)
        print(
            f"{name:<50} {median * 1000:>7.1f}ms {min(found) * 1000:>7.1f}ms {median / peer:>6.2f}x"
        )
    modules = loaded_modules()
    print(f"import metricache loads {len(modules)} metricache modules: {', '.join(modules)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
