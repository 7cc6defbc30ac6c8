"""The traffic: arrival processes, the endpoint mix, warm-up, queues over time."""

from dataclasses import replace

import numpy as np
import pytest

from simulator import REFERENCE_ENDPOINTS, Scenario, simulate


def test_constant_arrivals_are_exactly_evenly_spaced():
    r = simulate(Scenario().with_knobs(arrival="constant", rate_rps=40.0, duration_s=10.0, warmup_s=2.0))
    gaps = np.diff(r.rows["scheduled_s"])
    assert r.summary.requests == 400 and np.allclose(gaps, 1 / 40.0)


def test_poisson_gaps_have_the_exponential_mean_and_variance():
    r = simulate(Scenario().with_knobs(rate_rps=200.0, duration_s=300.0), seed=5)
    gaps = np.diff(r.rows["scheduled_s"])
    assert gaps.mean() == pytest.approx(1 / 200.0, rel=0.01)
    assert gaps.var() == pytest.approx((1 / 200.0) ** 2, rel=0.03)


def test_warm_up_is_discarded_from_rows_and_summary():
    r = simulate(Scenario().with_knobs(rate_rps=50.0, duration_s=10.0, warmup_s=4.0), seed=1)
    assert r.rows["scheduled_s"].min() >= 4.0 and r.rows["scheduled_s"].max() < 14.0
    assert r.meta["requests_total"] > r.summary.requests


def test_the_endpoint_mix_follows_the_weights():
    eps = (replace(REFERENCE_ENDPOINTS["indicator"], weight=3.0), replace(REFERENCE_ENDPOINTS["summary"], weight=1.0))
    s = Scenario().with_knobs(model="async", rate_rps=100.0, duration_s=60.0)
    s = replace(s, workload=replace(s.workload, endpoints=eps))
    r = simulate(s, seed=2)
    share = np.mean(r.rows["endpoint"] == 0)
    assert share == pytest.approx(0.75, abs=0.02)
    # the heavy summary's 14 queries show in its rows
    assert r.rows["db_ms"][r.rows["endpoint"] == 1].mean() > 10 * r.rows["db_ms"][r.rows["endpoint"] == 0].mean()


def test_closed_loop_users_never_have_more_than_one_request_each():
    s = Scenario().with_knobs(arrival="closed", users=5, think_time_s=0.0, duration_s=10.0, model="async")
    r = simulate(s, seed=1)
    assert r.timeseries["in_service"].max() <= 5
    assert r.summary.throughput_rps > 100  # no think time: as fast as the server answers


def test_queue_lengths_over_time_show_an_overload_building_up():
    r = simulate(Scenario().with_knobs(rate_rps=700.0, duration_s=10.0, warmup_s=0.0), seed=1)
    queue = r.timeseries["accept_queue"]
    assert queue[-1] > 1000 and queue[0] < 10  # 700 offered, ~490 served: the backlog fills
    assert set(r.timeseries) >= {"t_s", "accept_queue", "in_service", "cpu_jobs", "gil_waiting", "pool_waiting"}
