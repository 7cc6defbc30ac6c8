"""Waking an idle core costs CPU (Hardware.wake_cpu_ms): a burst that finds the core idle pays
it; one that follows another at the same instant, or waits in the queue, finds it warm."""

from __future__ import annotations

import pytest
import simpy

from simulator import simulate
from simulator.cpu import TimeSliced
from simulator.scenario import Fixed

from .conftest import bare, pure


def finish_times(jobs: list[tuple[float, float]], wake_s: float) -> tuple[list[float], int]:
    """(start, work) jobs on one core with a 4 ms slice; the time each finished, and the wakes."""
    env = simpy.Environment()
    cpu = TimeSliced(env, 1, 0.004, wake_s)
    done: list[float] = []

    def job(start, work):
        yield env.timeout(start)
        yield cpu.run(work)
        done.append(round(env.now * 1000, 6))

    for start, work in jobs:
        env.process(job(start, work))
    env.run()
    return done, cpu.wakes


def test_only_bursts_that_find_the_core_idle_pay_to_wake_it():
    # t=1 ms: idle core, pays 0.5: done at 1 + 0.5 + 2 = 3.5. t=2: queued behind it, warm: 3.5 + 2 = 5.5.
    # t=10: idle since 5.5, pays again: 12.5. t=12.5: the core is idle at that very instant: warm, 13.5.
    done, wakes = finish_times([(0.001, 0.002), (0.002, 0.002), (0.010, 0.002), (0.0125, 0.001)], 0.0005)
    assert done == [3.5, 5.5, 12.5, 13.5]
    assert wakes == 2


def test_a_loop_pays_less_per_request_as_the_load_keeps_its_core_busy():
    """The measured signature: CPU per request falls with load. One event loop on one core, 0.4 ms
    per wake: at 9% load 89% of requests find the core idle, at 75% a quarter do."""
    sc = bare("async", 1, cores=1, duration=30.0, endpoint=pure(cpu=Fixed(3.0), io=Fixed(5.0))).with_knobs(
        wake_cpu_ms=0.4, pool_size=50, max_overflow=0)  # a pool that never churns: no CPU of its own

    def cpu_per_request(rate):
        r = simulate(sc.with_knobs(rate_rps=rate), seed=1)
        return r.summary.utilisation["api_cpu"] * 1000 / r.summary.throughput_rps

    low = cpu_per_request(30.0)
    high = cpu_per_request(250.0)
    assert low == pytest.approx(3.0 + 0.4, abs=0.1)  # the arrival's burst wakes it (nothing runs after the wait)
    assert 3.0 < high < low - 0.2
