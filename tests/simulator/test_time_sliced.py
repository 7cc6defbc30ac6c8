"""cpu.TimeSliced: a core shared in turns, first come, first served, in slices (Hardware.
api_cpu_sharing "round-robin"). Hand-checked finishing times."""

from __future__ import annotations

import pytest
import simpy

from simulator.cpu import FairShare, TimeSliced
from simulator.model import OS_LAG_S, OS_SLICE_S, OS_SLICE_TICK_S


def run_jobs(cpu_of, jobs: list[tuple[float, float, object]]) -> tuple[dict, object]:
    """(start s, work s, owner) jobs on one core; each job's finishing time in ms, and the core."""
    env = simpy.Environment()
    cpu = cpu_of(env)
    done = {}

    def job(i, start, work, owner):
        yield env.timeout(start)
        yield cpu.run(work, owner)
        done[i] = round(env.now * 1000, 6)

    for i, (start, work, owner) in enumerate(jobs):
        env.process(job(i, start, work, owner))
    env.run()
    return done, cpu


def test_two_long_bursts_take_turns_slice_by_slice():
    # 3 ms each in 1.4-ms slices: A 0-1.4, B 1.4-2.8, A 2.8-4.2, B 4.2-5.6, A 5.6-5.8, B 5.8-6.0;
    # each slice that ends with the other waiting sends its job back: 4 times
    done, cpu = run_jobs(lambda env: TimeSliced(env, 1, OS_SLICE_S), [(0, 0.003, "a"), (0, 0.003, "b")])
    assert done == {0: pytest.approx(5.8), 1: pytest.approx(6.0)}
    assert cpu.preemptions == 4
    alone, cpu = run_jobs(lambda env: TimeSliced(env, 1, OS_SLICE_S), [(0, 0.003, "a")])
    assert alone == {0: pytest.approx(3.0)} and cpu.preemptions == 0  # no one waits: it keeps the core


def test_a_waking_process_waits_its_turn_where_fair_sharing_gives_it_the_core():
    """Process b ran 1 ms at t=0 and wakes at 2 ms with 1 ms more, while a, which has had 1 ms
    too, is 1 ms into a 3-ms burst. Fairly shared, b has had less than a has by then and takes the
    core at once; taking turns, it waits for a's slice to end at 2.4 ms."""
    jobs = [(0.0, 0.001, "b"), (0.001, 0.003, "a"), (0.002, 0.001, "b")]
    fair, _ = run_jobs(lambda env: FairShare(env, 1, OS_SLICE_S, OS_SLICE_TICK_S, OS_LAG_S), jobs)
    turns, _ = run_jobs(lambda env: TimeSliced(env, 1, OS_SLICE_S), jobs)
    assert fair[2] == pytest.approx(3.0)  # preempts a at 2 ms
    assert turns[2] == pytest.approx(3.4)  # a's slice from 1 ms ends at 2.4; b runs 2.4-3.4
    assert turns[1] == pytest.approx(5.0)  # a: 1-2.4, then 3.4-5.0


def test_bad_settings_are_refused_by_name():
    env = simpy.Environment()
    for kwargs, name in (({"servers": 0, "slice_s": 0.001}, "servers"), ({"servers": 1, "slice_s": 0}, "slice_s"),
                         ({"servers": 1, "slice_s": 0.001, "wake_s": -1}, "wake_s")):
        with pytest.raises(ValueError, match=name):
            TimeSliced(env, **kwargs)
