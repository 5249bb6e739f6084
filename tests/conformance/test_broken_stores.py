"""Stores that break one promise each fail, with a message that names the promise.

The reference store (correct, in memory) passes every check it declares: the suite
does not fail correct stores. Each broken subclass keeps every declaration and
breaks one thing; the check of that promise fails and says what went wrong.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from metricache.store import Capability
from metricache_conformance import CapabilityStatus, Conformance, Outcome, Scale, StoreTarget

ROOT = Path(__file__).resolve().parents[2]
SMALL = Scale(processes=1, threads=4, increments=500, swaps=50, lock_rounds=10)


def target(name: str) -> StoreTarget:
    return StoreTarget(f"tests.conformance.broken_stores:{name}")


def test_the_reference_store_keeps_every_promise_it_declares() -> None:
    with Conformance(target("ReferenceStore"), scale=SMALL) as suite:
        report = suite.run_all()
    assert [r.message for r in report.failures] == []
    row = report.row()
    assert row.basics
    assert dict(row.cells) == {
        Capability.DISTRIBUTED: CapabilityStatus.NOT_DECLARED,
        Capability.ATOMIC: CapabilityStatus.VERIFIED,
        Capability.CAS: CapabilityStatus.VERIFIED,
        Capability.LOCKING: CapabilityStatus.VERIFIED,
        Capability.EXACTLY_ONCE: CapabilityStatus.VERIFIED,
    }
    assert row.strategy.value == row.selected.value == "local_only"  # type: ignore[union-attr]


def test_a_read_then_write_increment_fails_atomic_with_the_lost_updates_counted() -> None:
    with Conformance(target("LossyCounterStore"), scale=SMALL) as suite:
        result = suite.run("atomic.concurrent_increments")
    assert result.outcome is Outcome.FAILED
    match = re.fullmatch(
        r"declares 'atomic', but ([\d,]+) of 2,000 increments were lost \(4 threads of one "
        r"process x 500 increments by incr and incr_many; the key holds ([\d,]+)\)",
        result.message,
    )
    assert match is not None, result.message
    lost, held = (int(g.replace(",", "")) for g in match.groups())
    assert lost > 0
    assert lost + held == 2000


def test_the_lossy_store_keeps_its_other_promises() -> None:
    with Conformance(target("LossyCounterStore"), scale=SMALL) as suite:
        owner = suite.run("locking.owner_only")
        semantics = suite.run("atomic.incr_semantics")
    assert owner.outcome is Outcome.PASSED
    assert semantics.outcome is Outcome.PASSED  # one increment at a time adds up


def test_counters_that_never_expire_fail_atomic_naming_the_ttl() -> None:
    with Conformance(target("ImmortalCounterStore"), scale=SMALL) as suite:
        result = suite.run("atomic.incr_ttl")
        semantics = suite.run("atomic.incr_semantics")
    assert result.outcome is Outcome.FAILED
    assert result.message == (
        "declares 'atomic', but a counter written by incr(key, 1, ttl=1) was still there "
        "after 8 s: incr must give the key the TTL it is called with (counters that never "
        "expire grow the store forever)"
    )
    assert semantics.outcome is Outcome.PASSED  # everything else about incr is right


def test_an_incr_that_keeps_the_old_expiry_fails_atomic() -> None:
    with Conformance(target("StickyTtlCounterStore"), scale=SMALL) as suite:
        result = suite.run("atomic.incr_ttl")
    assert result.outcome is Outcome.FAILED
    assert result.message == (
        "declares 'atomic', but a counter incremented with ttl=1, then with ttl=60, expired "
        "with its first TTL (read_counters gave None, expected 2): incr must reset the key's "
        "TTL"
    )


def test_a_release_by_a_non_owner_fails_locking() -> None:
    with Conformance(target("CarelessLockStore"), scale=SMALL) as suite:
        owner = suite.run("locking.owner_only")
        exclusion = suite.run("locking.mutual_exclusion")
        report = suite.report()
    assert owner.outcome is Outcome.FAILED
    assert owner.message == (
        "declares 'locking', but a non-owner released the lock: compare_and_delete(lock, "
        "b'intruder') returned True and the lease now holds None (the owner's token is "
        "b'owner')"
    )
    assert exclusion.outcome is Outcome.PASSED  # each holder releases its own lease
    assert report.row().status(Capability.LOCKING) is CapabilityStatus.FAILED


def test_data_kept_per_client_fails_distributed() -> None:
    with Conformance(target("PerClientStore"), scale=SMALL) as suite:
        clients = suite.run("distributed.two_clients")
        processes = suite.run("distributed.across_processes")
    assert clients.outcome is Outcome.FAILED
    assert clients.message == (
        "declares 'distributed', but client B did not see a write of client A (both opened "
        "with the same options): B read None"
    )
    assert processes.outcome is Outcome.FAILED
    assert processes.message == (
        "declares 'distributed', but a client in another process did not see this "
        "process's write: it read None"
    )


def test_the_end_to_end_contract_fails_when_clients_do_not_share() -> None:
    with Conformance(target("PerClientStore"), scale=SMALL) as suite:
        result = suite.run("contract.end_to_end")
    assert result.outcome is Outcome.FAILED
    assert result.message.startswith(
        "distributed_atomic promises the two instances' exact sums and merged gauges, but "
        "the merged view has: "
    )
    assert "conformance_jobs is missing" in result.message


def test_a_store_that_declares_nothing_is_held_to_what_the_probe_finds() -> None:
    with Conformance(target("UndeclaredStore"), scale=SMALL) as suite:
        # The probe's second client lives in this process and shares the space.
        assert suite.declaration_source == "probe"
        assert suite.declared == {
            Capability.DISTRIBUTED,
            Capability.ATOMIC,
            Capability.CAS,
            Capability.LOCKING,
        }
        result = suite.run("distributed.across_processes")
    assert result.outcome is Outcome.FAILED
    assert result.message == (
        "claims 'distributed', but a client in another process did not see this "
        "process's write: it read None"
    )


def test_the_command_line_names_the_broken_promise_and_exits_1(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "metricache.cli.main",
            "conformance",
            "tests.conformance.broken_stores:CarelessLockStore",
            "--check",
            "locking",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**_env(), "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    failed = [line for line in lines if line.startswith("  locking.owner_only ")]
    assert len(failed) == 1
    assert re.match(
        r"  locking\.owner_only +FAILED +\d+\.\d\d s  declares 'locking', but a non-owner "
        r"released the lock",
        failed[0],
    )
    header = lines.index(next(line for line in lines if line.startswith("store ")))
    # Only the locking checks ran: no basics, no strategy to report.
    assert re.split(r"\s{2,}", lines[header + 1]) == [
        "careless-lock",
        "not run",
        "not run",
        "not run",
        "not run",
        "✗",
        "not run",
        "not run",
    ]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONIOENCODING": "utf-8"}
