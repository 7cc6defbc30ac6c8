"""The API server's cores as Linux shares them among worker processes (cpu.FairShare): the process
that has had least CPU runs, and remembers across its sleeps what it has had; identical workers
so served fall into step and the core idles while all of them wait (benchmarks/cpu_sharing.py)."""

from __future__ import annotations

import pytest
import simpy

from simulator import simulate
from simulator.cpu import FairShare
from simulator.model import OS_LAG_S, OS_SLICE_S, OS_SLICE_TICK_S, OS_TICK_S
from simulator.scenario import Fixed

from .conftest import bare, pure


def finish_times(jobs: list[tuple[float, str, float]], lag_s: float = OS_LAG_S,
                 tick_s: float | None = OS_TICK_S) -> tuple[dict, FairShare]:
    """(start, process, work) jobs on one core with the model's slice and lag: when each finished, in
    ms. Slices end at a 4-ms tick unless ``tick_s`` says otherwise (the model: when they run out)."""
    env = simpy.Environment()
    cpu = FairShare(env, 1, OS_SLICE_S, tick_s, lag_s)
    done: dict = {}

    def job(start, owner, work):
        yield env.timeout(start)
        yield cpu.run(work, owner)
        done[(owner, start)] = round(env.now * 1000, 6)

    for start, owner, work in jobs:
        env.process(job(start, owner, work))
    env.run()
    return done, cpu


def test_a_waking_process_that_has_had_less_takes_the_core_at_once():
    # t=0: A and B each ask 3 ms: B, new, waits its turn (3-6 ms). Both have had 3 ms.
    # t=6.5: A runs alone. t=7: B wakes having had 3 ms, A 3.5: B takes the core, done at 8;
    # A has 1.5 ms left, done at 9.5.
    done, cpu = finish_times([(0.0, "A", 0.003), (0.0, "B", 0.003), (0.0065, "A", 0.002), (0.007, "B", 0.001)])
    assert done == {("A", 0.0): 3.0, ("B", 0.0): 6.0, ("A", 0.0065): 9.5, ("B", 0.007): 8.0}
    assert cpu.preemptions == 1


def test_a_long_sleeper_comes_back_at_most_the_lag_behind():
    # A burns 40 ms from t=0; B, new, waits for the first tick past A's slice (4 ms) and runs its
    # 1 ms. B sleeps to t=20 ms while A runs: A has had 19 ms, B 1. B comes back 4 ms (the lag)
    # behind A, not 18: it runs from 20 ms until it has had more than A, at the 28-ms tick.
    done, cpu = finish_times([(0.0, "A", 0.040), (0.0, "B", 0.001), (0.020, "B", 0.010)])
    assert done[("B", 0.0)] == 5.0
    assert done[("B", 0.020)] > 30.0  # the core went back to A at 28 ms, with 2 ms of B's burst left
    # with an unbounded memory B would have run its whole 10 ms at once
    done, _ = finish_times([(0.0, "A", 0.040), (0.0, "B", 0.001), (0.020, "B", 0.010)], lag_s=1.0)
    assert done[("B", 0.020)] == 30.0


def _cycles(lag_s: float, seconds: float = 20.0) -> tuple[float, float, float]:
    """Four processes on one core as the model shares it, each cycling 2.7 ms of CPU cut by two 0.16-ms sleeps, a 5.06-ms
    sleep and 0.7 ms of CPU cut once (benchmarks/cpu_sharing.py's cut case): (cycles a second,
    the core's busy share, the share of time with none runnable)."""
    env = simpy.Environment()
    cpu = FairShare(env, 1, OS_SLICE_S, OS_SLICE_TICK_S, lag_s)
    cut, wait = 0.00016, 0.00506
    pieces = [0.0009, cut, 0.0009, cut, 0.0009, wait, 0.00035, cut, 0.00035]
    count, idle = [0], [0, 0]

    def worker(i):
        yield env.timeout(i * 0.0001)
        while True:
            for n, piece in enumerate(pieces):
                yield cpu.run(piece, i) if n % 2 == 0 else env.timeout(piece)
            count[0] += 1

    def sampler():
        while True:
            idle[0] += cpu.jobs == 0
            idle[1] += 1
            yield env.timeout(0.0005)

    for i in range(4):
        env.process(worker(i))
    env.process(sampler())
    env.run(until=seconds)
    return count[0] / seconds, cpu.busy_area / seconds, idle[0] / idle[1]


def test_remembering_what_each_has_had_puts_identical_workers_in_step():
    """On the host: 232-240 cycles a second, the core 83-87% busy, none runnable 13-17% of the time.
    Served in step, the four cannot beat the lockstep bound (all four burn, then all wait) nor
    the core's (never idle); forgetting at every sleep (no lag) spreads them out."""
    work, sleeps = 0.0034, 0.00506 + 3 * 0.00016
    lockstep, never_idle = 4 / (4 * work + sleeps), 1 / work
    rate, busy, idle = _cycles(OS_LAG_S)
    assert lockstep < rate < 0.87 * never_idle
    assert busy == pytest.approx(rate * work, rel=0.002)  # the core serves the work asked, no more (a cycle cut by the end aside)
    assert 0.12 < idle < 0.20
    rate_forgetting, _, idle_forgetting = _cycles(0.0)
    assert rate_forgetting > 0.93 * never_idle and idle_forgetting < 0.08


def test_bad_settings_are_refused_by_name():
    env = simpy.Environment()
    for kwargs, name in (({"servers": 0}, "servers"), ({"slice_s": 0.0}, "slice_s"), ({"tick_s": -1.0}, "tick_s"),
                         ({"lag_s": -0.001}, "lag_s"), ({"wake_s": -1.0}, "wake_s")):
        args = {"servers": 1, "slice_s": OS_SLICE_S, "tick_s": OS_TICK_S, "lag_s": OS_LAG_S, **kwargs}
        with pytest.raises(ValueError, match=name):
            FairShare(env, **args)


def test_a_sync_worker_waits_a_round_trip_for_the_clients_close():
    """gunicorn's sync worker closes each connection gracefully: after the response it waits one
    round trip for the client's FIN before it takes the next connection. One worker, 10 ms of
    waiting a request, a 5-ms round trip: at most 1 / (10 + 5) ms = 66.7 req/s, where gthread's
    thread (keep-alive, no close) serves 1 / 10 ms."""
    def saturated(model):
        sc = bare(model, 1, cores=1, rate=200.0, duration=30.0, endpoint=pure(io=Fixed(10.0)))
        sc = sc.with_knobs(network_rtt_ms=5.0, **({"threads": 1} if model == "threads" else {}))
        return simulate(sc, seed=1).summary.throughput_rps

    assert saturated("sync") == pytest.approx(1000 / 15, rel=0.02)
    assert saturated("threads") == pytest.approx(1000 / 10, rel=0.02)


def test_on_two_cores_a_process_sent_back_waits_no_longer_than_a_tick_for_either():
    # t=0: C (1 ms) and A (30 ms) run; B, new, waits and takes C's core at 1 ms. At 10 ms C wakes
    # having had 1 ms and takes the core of A, which had most (10 ms); B has had 9 ms. At the
    # next tick past its slice (12 ms), B has had 11 ms, more than A, and gives A its core.
    env = simpy.Environment()
    cpu = FairShare(env, 2, OS_SLICE_S, OS_TICK_S, OS_LAG_S)

    def job(start, owner, work):
        yield env.timeout(start)
        yield cpu.run(work, owner)

    for start, owner, work in ((0.0, "C", 0.001), (0.0, "A", 0.030), (0.0, "B", 0.030), (0.010, "C", 0.030)):
        env.process(job(start, owner, work))
    env.run(until=0.0115)
    assert sorted(core[0] for core in cpu._cores) == ["B", "C"]
    env.run(until=0.0121)
    assert sorted(core[0] for core in cpu._cores) == ["A", "C"]
    assert cpu.preemptions == 2


def test_the_model_ends_a_slice_when_it_runs_out_not_at_the_tick():
    """On the host a process sharing a core was preempted after 1.40-1.44 ms of running (p10-p90),
    its slice, not at the 4-ms tick. A runs from 0; B, new, waits from 0.5 ms, having had as much
    as A then (0.5). At 1.4 A has had more: B runs to 2.8 (1.9), A to 4.2 (2.8; 0.2 left), B to
    5.6 (3.3; 0.2 left), A ends at 5.8 and B at 6.0. At the tick, A would have run its 3 ms at once."""
    jobs = [(0.0, "A", 0.003), (0.0005, "B", 0.003)]
    done, cpu = finish_times(jobs, tick_s=OS_SLICE_TICK_S)
    assert done == pytest.approx({("A", 0.0): 5.8, ("B", 0.0005): 6.0})
    assert cpu.preemptions == 4  # at 1.4, 2.8, 4.2 and 5.6 ms
    done, _ = finish_times(jobs)
    assert done == pytest.approx({("A", 0.0): 3.0, ("B", 0.0005): 6.0})
