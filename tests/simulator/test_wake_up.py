"""Waking an idle core costs CPU (Hardware.wake_cpu_ms): a burst that finds the core idle pays
it; one that follows another at the same instant, or waits in the queue, finds it warm. In the
model only a long idle costs it all (model.WAKE_COLD_S: nothing under 6 ms, all from 20 ms)."""

from __future__ import annotations

import math

import pytest
import simpy

from simulator import simulate
from simulator.cpu import FairShare, TimeSliced
from simulator.model import OS_LAG_S, OS_SLICE_S, OS_TICK_S, WAKE_COLD_S
from simulator.scenario import Fixed

from .conftest import bare, pure

SHARINGS = ("fair", "round-robin")


def finish_times(jobs: list[tuple[float, float]], wake_s: float, cold_s: tuple[float, float] = (0.0, 0.0),
                 sharing: str = "fair") -> tuple[list[float], float]:
    """(start, work) jobs on one core, the time each finished, and the wakes: fairly shared with the
    model's slice and lag, slices ending at a 4-ms tick; or taking turns in 4-ms slices (no burst
    here is cut: the wake-up cost is what is tested)."""
    env = simpy.Environment()
    if sharing == "fair":
        cpu = FairShare(env, 1, OS_SLICE_S, OS_TICK_S, OS_LAG_S, wake_s, cold_s)
    else:
        cpu = TimeSliced(env, 1, OS_TICK_S, wake_s, cold_s)
    done: list[float] = []

    def job(start, work):
        yield env.timeout(start)
        yield cpu.run(work)
        done.append(round(env.now * 1000, 6))

    for start, work in jobs:
        env.process(job(start, work))
    env.run()
    return done, cpu.wakes


@pytest.mark.parametrize("sharing", SHARINGS)
def test_only_bursts_that_find_the_core_idle_pay_to_wake_it(sharing):
    # t=1 ms: idle core, pays 0.5: done at 1 + 0.5 + 2 = 3.5. t=2: queued behind it, warm: 3.5 + 2 = 5.5.
    # t=10: idle since 5.5, pays again: 12.5. t=12.5: the core is idle at that very instant: warm, 13.5.
    done, wakes = finish_times([(0.001, 0.002), (0.002, 0.002), (0.010, 0.002), (0.0125, 0.001)], 0.0005,
                               sharing=sharing)
    assert done == [3.5, 5.5, 12.5, 13.5]
    assert wakes == 2


@pytest.mark.parametrize("sharing", SHARINGS)
def test_a_wake_costs_a_share_that_grows_with_the_idle_before_it(sharing):
    # idle 5 ms (under 6): warm. Idle 13 ms: half of 1 ms. Idle 25 ms: all of it. A share counts as a share.
    done, wakes = finish_times([(0.0, 0.001), (0.006, 0.001), (0.020, 0.001), (0.0465, 0.001)], 0.001, (0.006, 0.020),
                               sharing=sharing)
    assert done == pytest.approx([1.0, 7.0, 21.5, 48.5])  # the first finds the core idle since t=0: warm
    assert wakes == pytest.approx(1.5)


def test_cold_bounds_are_checked():
    env = simpy.Environment()
    for bad in ((0.02, 0.006), (-0.001, 0.02)):
        with pytest.raises(ValueError, match="cold_s"):
            FairShare(env, 1, OS_SLICE_S, OS_TICK_S, OS_LAG_S, 0.001, bad)
        with pytest.raises(ValueError, match="cold_s"):
            TimeSliced(env, 1, OS_SLICE_S, 0.001, bad)


def test_a_loop_pays_less_per_request_as_the_load_keeps_its_core_busy():
    """The measured signature: CPU per request falls with load. One event loop on one core, 0.4 ms
    per full wake. At 30 req/s a request's 3 ms burst comes after an idle of G = its inter-arrival
    time less 3 ms (the burst after the 5-ms wait finds the core idle 5 ms: warm), so it pays
    0.4 ms x E[coldness(G)] = 0.4 x (1/(14 ms x lambda)) (exp(-lambda 9 ms) - exp(-lambda 23 ms)),
    0.249 ms; at 250 req/s most idles are short."""
    assert WAKE_COLD_S == (0.006, 0.020)
    sc = bare("async", 1, cores=1, duration=30.0, endpoint=pure(cpu=Fixed(3.0), io=Fixed(5.0))).with_knobs(
        wake_cpu_ms=0.4, pool_size=50, max_overflow=0)  # a pool that never churns: no CPU of its own

    def cpu_per_request(rate):
        r = simulate(sc.with_knobs(rate_rps=rate), seed=1)
        return r.summary.utilisation["api_cpu"] * 1000 / r.summary.throughput_rps

    low = cpu_per_request(30.0)
    high = cpu_per_request(250.0)
    lam = 30.0 / 1000  # per ms
    expected = 0.4 * (math.exp(-lam * 9) - math.exp(-lam * 23)) / (14 * lam)
    assert low == pytest.approx(3.0 + expected, abs=0.03)
    assert 3.0 < high < low - 0.2
