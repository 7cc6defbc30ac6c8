"""The analytic companion against known closed forms, and against the model."""

import math

import numpy as np
import pytest

from simulator import (
    Exponential,
    mm1_ps_response_s,
    mmc_mean_wait_s,
    mva,
    predict,
    simulate,
    ttl_hit_ratio,
)

from .conftest import bare, pure


def test_mva_of_one_queue_and_a_think_time_is_the_machine_repairman():
    """N users, think Z, one exponential server D: compare with the finite-source M/M/1//N formula."""
    d, z, n = 0.01, 0.05, 8
    x, r = mva([d], [1], n, think_s=z)
    # birth-death: p(k) ~ N! / (N-k)! (D/Z)^k
    p = np.array([math.factorial(n) / math.factorial(n - k) * (d / z) ** k for k in range(n + 1)])
    p /= p.sum()
    assert x[-1] == pytest.approx((1 - p[0]) / d, rel=1e-9)
    assert r[-1] == pytest.approx(n / x[-1] - z, rel=1e-9)


def test_mva_with_multi_server_station_reaches_its_bound():
    x, _ = mva([0.004, 0.01], [2, 0], 200)
    assert x[-1] == pytest.approx(2 / 0.004, rel=1e-3)  # two servers, 4 ms each
    assert x[0] == pytest.approx(1 / 0.014)  # one user: no queueing at all


def test_predict_is_erlang_c_for_pure_io_sync_workers():
    c, service_s, rate = 4, 0.010, 300.0
    scenario = bare("sync", c, rate=rate, endpoint=pure(io=Exponential(10.0)))
    prediction = predict(scenario)
    assert prediction.mean_ms == pytest.approx((service_s + mmc_mean_wait_s(rate, service_s, c)) * 1000, rel=1e-6)
    assert prediction.capacity_rps == pytest.approx(c / service_s)
    assert prediction.bottleneck == "sync workers"


def test_predict_is_processor_sharing_for_one_event_loop_on_cpu():
    scenario = bare("async", 1, rate=140.0, endpoint=pure(cpu=Exponential(5.0), queries=0))
    assert predict(scenario).mean_ms == pytest.approx(mm1_ps_response_s(140.0, 0.005) * 1000, rel=1e-6)


def test_predict_reports_overload_as_infinite_latency_at_capacity():
    scenario = bare("async", 1, rate=500.0, endpoint=pure(cpu=Exponential(5.0), queries=0))
    p = predict(scenario)
    assert not p.stable and math.isinf(p.p99_ms)
    assert p.throughput_rps == pytest.approx(200.0)


def test_predict_tracks_the_simulation_on_closed_loop_users():
    scenario = bare("sync", 2, rate=1.0, duration=120.0, endpoint=pure(io=Exponential(20.0))).with_knobs(
        arrival="closed", users=10, think_time_s=0.1)
    simulated = np.mean([simulate(scenario, seed=s).summary.throughput_rps for s in range(3)])
    assert predict(scenario).throughput_rps == pytest.approx(simulated, rel=0.03)


def test_predicted_hit_ratio_is_the_ttl_formula_with_one_cache_per_process():
    scenario = bare("sync", 4, rate=100.0, endpoint=pure(io=Exponential(5.0), cacheable=True)).with_knobs(
        cache="local", ttl_s=20.0, key_count=1000)
    assert predict(scenario).cache_hit_ratio == pytest.approx(ttl_hit_ratio(100.0, 20.0, 1000, 1.0, 4))


def test_percentiles_of_an_endpoint_mix_follow_its_slow_class():
    """5% of requests run 14 queries: p99 lands in that class, p50 in the fast one (not at the mean)."""
    import dataclasses

    from simulator import REFERENCE_ENDPOINTS as R
    from simulator import Scenario

    mix = (dataclasses.replace(R["indicator"], weight=60), dataclasses.replace(R["indicator_list"], weight=20),
           dataclasses.replace(R["summary"], weight=5), dataclasses.replace(R["events_read"], weight=10),
           dataclasses.replace(R["events_write"], weight=5))
    base = Scenario().with_knobs(database="postgresql", rate_rps=100.0, duration_s=60.0, warmup_s=5.0)
    for knobs in ({"model": "sync", "workers": 5}, {"model": "async", "workers": 2, "cache": "redis", "ttl_s": 60.0}):
        sc = dataclasses.replace(base, workload=dataclasses.replace(base.workload, endpoints=mix)).with_knobs(**knobs)
        p, s = predict(sc), simulate(sc, seed=2).summary
        assert p.p50_ms == pytest.approx(s.p50_ms, rel=0.10), knobs
        assert p.p99_ms == pytest.approx(s.p99_ms, rel=0.10), knobs
