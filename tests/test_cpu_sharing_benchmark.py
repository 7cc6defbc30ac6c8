"""benchmarks/cpu_sharing.py: its two references, the model's CPU on the closed cycle and the
machine-repairman queue, agree with each other where they must (the host side is measured only
by the benchmark: these machines are shared)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import cpu_sharing  # noqa: E402


def test_one_process_cycles_at_one_over_its_cycle():
    m = cpu_sharing.model(1, 2.7, 5.0, 0.7, 0, seconds=10.0)
    cycle_ms = 2.7 + 5.0 + 0.7 + cpu_sharing.SLEEP_OVERSHOOT_MS
    assert m["cycles_per_s"] == pytest.approx(1000 / cycle_ms, rel=0.01)
    assert m["busy"] == pytest.approx(3.4 / cycle_ms, rel=0.01)
    assert cpu_sharing.processor_sharing(1, 2.7, 5.0, 0.7, 0) == pytest.approx(1000 / 8.4)  # no one to share with


def test_enough_processes_keep_the_core_busy_under_both():
    for sharing in ("fair", "round-robin"):
        m = cpu_sharing.model(8, 2.7, 5.0, 0.7, 0, seconds=10.0, sharing=sharing)
        assert m["busy"] > 0.99 and m["cycles_per_s"] == pytest.approx(1000 / 3.4, rel=0.01)
    assert cpu_sharing.processor_sharing(8, 2.7, 5.0, 0.7, 0) == pytest.approx(1000 / 3.4, rel=0.01)


def test_machine_repairman_by_hand_and_cuts_add_their_sleeps():
    # K = 2, S = 3.4, Z = 5: p0 = 1 / (1 + 2 r + 2 r^2), r = S / Z
    r = 3.4 / 5.0
    assert cpu_sharing.processor_sharing(2, 2.7, 5.0, 0.7, 0) == pytest.approx(
        (1 - 1 / (1 + 2 * r + 2 * r * r)) * 1000 / 3.4)
    pieces = cpu_sharing._pieces(2.7, 5.0, 0.7, 2)
    assert sum(ms for kind, ms in pieces if kind == "burn") == pytest.approx(3.4)
    assert [ms for kind, ms in pieces if kind == "sleep"] == [0.1, 0.1, 5.0, 0.1]


def test_a_pinned_block_gives_back_every_cpu_even_when_it_fails():
    import os

    from pinning import pinned

    allowed = os.sched_getaffinity(0)
    with pytest.raises(RuntimeError), pinned([max(allowed)]):
        assert os.sched_getaffinity(0) == {max(allowed)}
        raise RuntimeError("the benchmark failed")
    assert os.sched_getaffinity(0) == allowed
    with pinned(None):
        assert os.sched_getaffinity(0) == allowed


def test_four_workers_fall_into_step_when_shared_fairly_and_stay_out_of_step_taking_turns():
    """The two ways a host shares the core (Hardware.api_cpu_sharing), on the recipe's cycle: fair
    sharing idles the core while all four wait (the host on 2026-12-05: 250-266 cycles/s, 87-93%
    busy), turns keep it busy (the host on 2026-12-06: 283, 100%), above processor sharing's 281."""
    fair = cpu_sharing.model(4, 2.7, 5.0, 0.7, 0, seconds=10.0)
    turns = cpu_sharing.model(4, 2.7, 5.0, 0.7, 0, seconds=10.0, sharing="round-robin")
    ps = cpu_sharing.processor_sharing(4, 2.7, 5.0, 0.7, 0)
    assert fair["busy"] < 0.92 and fair["cycles_per_s"] < 0.95 * ps
    assert turns["busy"] > 0.97 and turns["cycles_per_s"] > ps
    assert turns["burn_wall_p50"] < fair["burn_wall_p50"]  # the 2.7-ms burn shares the core with fewer
