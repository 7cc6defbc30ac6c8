"""Each number a notebook states in words, computed from the packages: the sentence still holds."""

from __future__ import annotations

import numpy as np
import pytest

from latency_lab import runs
from latency_lab.caching import hit_ratios, stale_read_probability, stale_read_share_simulated
from latency_lab.curves import capacity, max_rate_under
from latency_lab.explorer import configure
from simulator import REFERENCE_ENDPOINTS, Scenario, ScenarioDoesNotFit, predict, simulate


def test_01_four_sync_workers_saturate_near_175_with_20_ms_of_waiting():
    """'Four workers finish at most 4 / 0.023 s, about 175 requests per second.'"""
    assert 160 <= capacity(configure("sync", 4, 1, 2.0, 20.0)) <= 190


def test_01_two_event_loops_reach_about_4x_four_sync_workers():
    """'Two loops on 2 cores finish ... roughly 4x the rate of 4 sync workers.'"""
    ratio = capacity(configure("async", 2, 1, 2.0, 20.0)) / capacity(configure("sync", 4, 1, 2.0, 20.0))
    assert 3.5 <= ratio <= 4.5


def test_01_with_5_ms_of_waiting_the_gap_shrinks_to_about_1_5x():
    ratio = capacity(configure("async", 2, 1, 2.0, 5.0)) / capacity(configure("sync", 4, 1, 2.0, 5.0))
    assert 1.3 <= ratio <= 1.7


def test_01_one_event_loop_reaches_about_half_of_two():
    ratio = capacity(configure("async", 1, 1, 2.0, 20.0)) / capacity(configure("async", 2, 1, 2.0, 20.0))
    assert 0.45 <= ratio <= 0.55


def test_01_the_model_saturates_where_the_formula_says():
    """'Each then bends up as it nears its own capacity': below it the simulated p99 is modest, past it
    the backlog grows."""
    sc = configure("sync", 4, 1, 2.0, 20.0).with_knobs(duration_s=20.0, warmup_s=2.0)
    cap = capacity(sc)
    below = simulate(sc.with_knobs(rate_rps=0.6 * cap), seed=1).summary
    above = simulate(sc.with_knobs(rate_rps=1.2 * cap), seed=1, allow_overcommit=True).summary
    assert below.p99_ms < 100 and above.p99_ms > 1000
    assert above.throughput_rps < 1.03 * cap


def test_04_eight_per_process_caches_hit_less_than_one_shared():
    r = hit_ratios(120, 60, 10_000, 1.0, 8)
    assert r["local"] < r["redis"] - 0.1


@pytest.mark.parametrize("since", [0.0, 10.0, 30.0, 59.0, 70.0])
def test_04_stale_read_formula_matches_the_models_cache(since):
    """The formula notebook 04 plots, against brute force with simulator.backends.TtlCache."""
    formula = float(stale_read_probability(0.05, 60.0, since))
    simulated = stale_read_share_simulated(0.05, 60.0, since, trials=4000, seed=3)
    assert simulated == pytest.approx(formula, abs=0.03)


def test_05_a_pool_of_two_finishes_about_98_requests_per_second():
    base = runs.preset("reference_fastapi_async").with_knobs(database="postgresql", io_ms=20.0)
    sc = base.with_knobs(pool_size=2, max_overflow=0, pool_timeout_s=1.0)
    assert 90 <= capacity(sc) <= 105
    assert "pool" in predict(sc.with_knobs(rate_rps=120.0)).bottleneck


def test_05_heavy_queries_make_the_db_cpu_the_ceiling():
    base = runs.preset("reference_fastapi_async").with_knobs(database="postgresql", io_ms=20.0)
    heavy = base.with_knobs(workers=2, pool_size=20, max_overflow=10, queries_per_request=14, db_cpu_ms=5.0,
                            io_ms=2.0)
    p = predict(heavy.with_knobs(rate_rps=10.0))
    assert "db" in p.bottleneck.lower()
    assert p.capacity_rps == pytest.approx(4 / 0.070, rel=0.05)


def test_05_sixteen_threaded_processes_need_a_pooler():
    many = runs.preset("reference_flask_sync").with_knobs(model="threads", workers=16, threads=15,
                                                         database="postgresql")
    assert many.db_connections() == 240
    with pytest.raises(ScenarioDoesNotFit, match="max_connections 100"):
        many.check()
    assert not many.with_knobs(db_max_connections=1000).problems()


def _writes(**knobs) -> Scenario:
    import dataclasses

    sc = Scenario().with_knobs(model="async", workers=2)
    sc = dataclasses.replace(sc, workload=dataclasses.replace(sc.workload,
                                                              endpoints=(REFERENCE_ENDPOINTS["events_write"],)))
    return sc.with_knobs(**knobs)


def test_06_no_retry_gets_more_than_350_writes_per_second_through():
    # after a 10 s warm-up: the first second's unused capacity (a saved burst) is spent by then
    s = simulate(_writes(rate_rps=400.0, duration_s=20.0, warmup_s=10.0), seed=1).summary
    assert s.throughput_rps <= 350 * 1.01 and s.throttles > 0


def test_06_sixty_seconds_of_burst_last_about_140_seconds_at_500_writes():
    """'The saved capacity (21,000 writes) drains at 150 writes/s above the rate: about 140 s.'"""
    r = simulate(_writes(rate_rps=500.0, nosql_start_burst_s=60.0, duration_s=240.0, warmup_s=0.0), seed=1)
    t, throttled = r.rows["scheduled_s"], r.rows["throttles"] > 0
    assert throttled[(t > 20) & (t < 120)].mean() < 0.02
    assert throttled[(t > 170) & (t < 240)].mean() > 0.2


def test_08_a_sync_worker_with_20_ms_of_waiting_finishes_about_45_per_second():
    sc = runs.preset("reference_flask_sync").with_knobs(io_ms=20.0, database="postgresql", workers=1)
    assert 40 <= capacity(sc) <= 48


def test_08_a_looser_target_lets_a_server_run_hotter():
    sc = runs.preset("reference_flask_sync").with_knobs(io_ms=20.0, database="postgresql", model="async", workers=2)
    tight, loose = max_rate_under(sc, 30.0), max_rate_under(sc, 250.0)
    assert 0 < tight < loose <= capacity(sc)
    assert np.isfinite(loose)


def test_01_past_capacity_an_event_loop_collapses_until_something_bounds_what_is_in_flight():
    """'The loop starts everything and finishes almost nothing for the first seconds. It recovers, to about
    90% of its capacity, when something bounds what is in flight: ... the database pool ... With neither ... it stays down ...
    --limit-concurrency ... finish at full speed.'"""
    from latency_lab.curves import answered_per_second

    loop = configure("async", 1, 1, cpu_ms=2.0, io_ms=5.0)
    cap = capacity(loop)
    over = loop.with_knobs(rate_rps=round(1.3 * cap), duration_s=25.0, warmup_s=0.0)

    def per_second(**knobs):
        return answered_per_second(simulate(over.with_knobs(**knobs), seed=0, allow_overcommit=True))[1]

    pooled = per_second()
    assert pooled[:2].mean() < 0.3 * cap  # the collapse
    # new requests wait for one of the pool's 15 connections; those holding one still take their turns
    # on the loop for each round trip (the real app: about 200 of ~230 req/s)
    assert 0.85 * cap < pooled[-10:].mean() < cap
    unbounded = per_second(pool_size=1000, client_connections=100_000)
    assert unbounded[-10:].mean() < 0.5 * cap
    limited = per_second(limit_concurrency=64)
    assert limited[1:].mean() > 0.95 * cap and limited[1:].min() > 0.8 * cap
