"""Python's garbage collector in the model: pauses at a rate per request, scaled by gc_threshold."""

from __future__ import annotations

import numpy as np
import pytest

from simulator import predict, simulate
from simulator.scenario import Fixed

from .conftest import bare, pure

# one sync worker, requests 100 ms apart and 1 ms of CPU each: nothing queues
ALONE = bare("sync", 1, cores=1, rate=10.0, duration=20.0, warmup=0.0,
             endpoint=pure(cpu=Fixed(1.0), queries=0)).with_knobs(arrival="constant")


def test_a_full_collection_every_fourth_request_pauses_that_request():
    sc = ALONE.with_knobs(gc_gen2_per_request=0.25, gc_gen2_ms=10.0)
    trace: list = []
    r = simulate(sc, seed=2, trace=trace)
    latency = r.rows["latency_ms"]
    paused = np.isclose(latency, 11.0)
    assert np.isclose(latency[~paused], 1.0).all()
    assert paused.sum() == 50 and np.diff(np.flatnonzero(paused)).tolist() == [4] * 49  # evenly, as thresholds do
    assert r.meta["gc_collections"] == [0, 50]
    assert sum(what == "gc2 p0" for _, _, what in trace) == 50
    # the pause is CPU: the utilisation law counts it
    assert r.summary.utilisation["api_cpu"] == pytest.approx(10.0 * (1.0 + 0.25 * 10.0) / 1000, rel=0.01)


def test_the_threshold_scales_the_rate_and_zero_turns_collection_off():
    sc = ALONE.with_knobs(gc_gen1_per_request=0.1, gc_gen1_ms=2.0, gc_gen2_per_request=0.01, gc_gen2_ms=30.0)
    assert simulate(sc, seed=2).meta["gc_collections"] == [20, 2]
    assert simulate(sc.with_knobs(gc_threshold=1400), seed=2).meta["gc_collections"] == [10, 1]
    off = simulate(sc.with_knobs(gc_threshold=0), seed=2)
    assert off.meta["gc_collections"] == [0, 0] and np.isclose(off.rows["latency_ms"], 1.0).all()


def test_an_event_loop_stalls_for_a_pause_and_the_queue_behind_it_drains_slowly():
    """A 40 ms full collection on a loop at 85% holds every request behind it: the backlog drains
    at the 15% to spare, so one pause delays the requests of the next 40 / 0.15 ms, by 40 ms
    falling to none: rate x 40 ms x (40 / 0.15 ms) / 2 of waiting in all. Five pauses in 60 s take
    0.4% more CPU and add at least that to the mean latency (0.45 ms; 1.0 at this seed)."""
    base = bare("async", 1, cores=1, rate=170.0, duration=60.0, endpoint=pure(cpu=Fixed(5.0), queries=0))
    without = simulate(base, seed=3)
    with_gc = simulate(base.with_knobs(gc_gen2_per_request=1 / 2000, gc_gen2_ms=40.0), seed=3)
    assert with_gc.summary.utilisation["api_cpu"] - without.summary.utilisation["api_cpu"] == pytest.approx(
        170.0 * 0.02 / 1000, abs=0.002)  # 0.02 ms a request
    pauses = with_gc.meta["gc_collections"][1]
    assert pauses == 5  # 10,200 requests, one every 2,000 from the start (a fresh process has just collected)
    waiting_s = pauses * 170.0 * 0.040 * (0.040 / (1 - 0.85)) / 2
    added_ms = with_gc.rows["latency_ms"].mean() - without.rows["latency_ms"].mean()
    assert added_ms >= waiting_s * 1000 / with_gc.rows["latency_ms"].size


def test_capacity_counts_the_cpu_of_the_pauses():
    sc = ALONE.with_knobs(gc_gen2_per_request=0.1, gc_gen2_ms=5.0)  # 0.5 ms a request on 1 ms
    assert predict(sc).capacity_rps == pytest.approx(predict(ALONE).capacity_rps / 1.5, rel=1e-6)


def test_a_full_collection_takes_longer_the_more_requests_the_loop_holds():
    """A full collection traverses the objects of every request in the process: on an event
    loop its pause is gc_gen2_ms plus so much per request in flight, up to gc_gen2_max_ms."""
    alone = ALONE.with_knobs(model="async", gc_gen2_per_request=0.25, gc_gen2_ms=10.0,
                             gc_gen2_ms_per_request_in_flight=2.0)
    latency = simulate(alone, seed=2).rows["latency_ms"]  # each request alone: 1 in flight
    assert sorted(set(np.round(latency, 6))) == [1.0, 13.0]
    capped = simulate(alone.with_knobs(gc_gen2_max_ms=11.0), seed=2).rows["latency_ms"]
    assert sorted(set(np.round(capped, 6))) == [1.0, 12.0]
    # 100 req/s, each waiting 45 ms on the database: about 5 in flight when a collection comes,
    # so a pause 2 ms longer for each, and the CPU they take grows by 0.25 x 2 x 5 ms a request
    held = bare("async", 1, cores=1, rate=100.0, duration=60.0,
                endpoint=pure(cpu=Fixed(1.0), io=Fixed(45.0))).with_knobs(
        arrival="constant", gc_gen2_per_request=0.25, gc_gen2_ms=10.0)
    flat = simulate(held, seed=2).summary.utilisation["api_cpu"]
    grows = simulate(held.with_knobs(gc_gen2_ms_per_request_in_flight=2.0), seed=2).summary.utilisation["api_cpu"]
    assert (grows - flat) * 1000 / 100 == pytest.approx(0.25 * 2.0 * 5, rel=0.25)


def test_the_pause_grows_only_with_a_cap_above_its_base():
    with pytest.raises(ValueError, match="gc_gen2_max_ms"):
        ALONE.with_knobs(gc_gen2_ms=10.0, gc_gen2_max_ms=5.0)
    assert ALONE.server.gc_gen2_pause_ms(100) == 0.0
    s = ALONE.with_knobs(gc_gen2_ms=10.0, gc_gen2_ms_per_request_in_flight=0.5, gc_gen2_max_ms=40.0).server
    assert [s.gc_gen2_pause_ms(n) for n in (0, 10, 100)] == [10.0, 15.0, 40.0]
