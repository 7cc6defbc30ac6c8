"""The model against queueing theory: many seeds, warm-up cut, stated tolerances."""

import numpy as np
import pytest

from simulator import (
    Backends,
    Exponential,
    Hardware,
    TokenBucket,
    erlang_c,
    mm1_ps_response_s,
    mmc_mean_wait_s,
    simulate,
    sweep,
    ttl_hit_ratio,
)

from .conftest import bare, mean_over, pure


def test_erlang_c_matches_published_values():
    # Textbook values: C(2, 1) = 1/3; C(1, a) = a (an M/M/1 queue waits with P = rho).
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(4, 4.0) == 1.0


def test_sync_workers_with_pure_io_are_an_m_m_c_queue():
    """4 sync workers, exponential 10 ms waits, rho = 0.6: mean wait in the accept queue is Erlang C's.

    One 300 s run estimates the mean wait to about 3.6%; 24 seeds bring the
    standard error near 0.7%, so the 3% tolerance is four standard errors.
    """
    c, service_s, rate = 4, 0.010, 240.0
    scenario = bare("sync", c, rate=rate, duration=300.0, warmup=10.0,
                    endpoint=pure(io=Exponential(service_s * 1000)))
    results = [p.result for p in sweep(scenario, {"rate_rps": [rate]}, seeds=range(24), keep_rows=True)]
    waited = mean_over(results, lambda r: np.mean(r.rows["start_s"] - r.rows["scheduled_s"]))
    expected = mmc_mean_wait_s(rate, service_s, c)
    assert waited == pytest.approx(expected, rel=0.03)
    # and the time in service is the service time
    served = mean_over(results, lambda r: np.mean(r.rows["app_ms"])) / 1000
    assert served == pytest.approx(service_s, rel=0.01)


def test_cpu_shared_by_many_processes_is_an_m_m_1_queue():
    """64 sync workers on 1 core, exponential 5 ms of CPU, rho = 0.7: response = 1 / (mu - lambda),
    as for every order that keeps the core busy (time slices, processor sharing, FIFO)."""
    rate, service_s = 140.0, 0.005
    scenario = bare("sync", 64, cores=1, rate=rate, duration=200.0, warmup=10.0,
                    endpoint=pure(cpu=Exponential(service_s * 1000), queries=0))
    # 64 real workers would not fit in 4 GB; here they stand in for "many runnable threads".
    points = sweep(scenario, {"rate_rps": [rate]}, seeds=range(12), allow_overcommit=True)
    response = float(np.mean([p.summary.mean_ms for p in points])) / 1000
    assert response == pytest.approx(mm1_ps_response_s(rate, service_s), rel=0.05)


@pytest.mark.parametrize("sharing", ["fair", "round-robin"])
@pytest.mark.parametrize(("slice_ms", "expected_ms"), [
    (4.0, 1.0 + 0.7 * 1.0 / (2 * (1 - 0.7))),  # slices longer than the bursts: FIFO, Pollaczek-Khinchine
    (0.02, 1.0 / (1 - 0.7)),  # slices far shorter: processor sharing, S / (1 - rho)
])
def test_both_ways_of_sharing_run_short_bursts_of_new_processes_first_come_first_served(sharing, slice_ms,
                                                                                        expected_ms):
    """Fixed 1 ms bursts at rho = 0.7 on one core, each from a process that has not run before: under
    slices longer than a burst the mean response is M/D/1's (2.17 ms), under far shorter ones
    processor sharing's (3.33 ms). Fairly shared, processes that have had less than others come
    first, and new ones have had the same, so they queue in order; taking turns, they queue in
    order anyway (Hardware.api_cpu_sharing)."""
    import simpy

    from simulator.cpu import FairShare, TimeSliced

    env = simpy.Environment()
    if sharing == "fair":
        core = FairShare(env, 1, slice_ms / 1000, slice_ms / 1000, 0.004)
    else:
        core = TimeSliced(env, 1, slice_ms / 1000)
    rng = np.random.default_rng(7)
    responses = []

    def job():
        t0 = env.now
        yield core.run(0.001)
        responses.append(env.now - t0)

    def source():
        while env.now < 200.0:
            yield env.timeout(rng.exponential(1 / 700.0))
            env.process(job())

    env.process(source())
    env.run()
    assert np.mean(responses[5000:]) * 1000 == pytest.approx(expected_ms, rel=0.03)
    assert core.busy_area / env.now == pytest.approx(0.7, rel=0.02)


def test_littles_law_holds_between_the_cpu_state_and_the_request_rows(seeds):
    """L, time-averaged jobs on the CPU (its own state), equals lambda x W from the rows, within 2%."""
    scenario = bare("sync", 64, cores=1, rate=140.0, duration=200.0, warmup=10.0,
                    endpoint=pure(cpu=Exponential(5.0), queries=0))
    for s in list(seeds)[:3]:
        r = simulate(scenario, seed=s, allow_overcommit=True)
        jobs = r.meta["mean_jobs"]["api_cpu"]
        lam = r.summary.requests / scenario.workload.duration_s
        assert jobs == pytest.approx(lam * r.summary.mean_ms / 1000, rel=0.02)


def test_token_bucket_long_run_rate_is_the_provisioned_rate():
    bucket = TokenBucket(rate=350.0, burst_s=300.0)
    taken = sum(bucket.take(i / 700.0) for i in range(700 * 120))  # twice the capacity, 120 s
    assert taken / 120.0 == pytest.approx(350.0, rel=0.01)


def test_nosql_writes_past_capacity_are_throttled_to_350_per_second():
    """Offered 700 writes/s with no retries: the store accepts 350/s and throttles the rest."""
    scenario = bare("async", 1, rate=700.0, duration=60.0,
                    endpoint=pure(name="events_write", queries=0, nosql_writes=1))
    scenario = scenario.with_knobs(nosql_max_attempts=1)
    r = simulate(scenario, seed=3)
    assert r.summary.throughput_rps == pytest.approx(350.0, rel=0.02)
    assert r.summary.utilisation["nosql_write"] == pytest.approx(1.0, rel=0.02)
    assert r.summary.error_rate == pytest.approx(0.5, abs=0.03)


def test_nosql_burst_absorbs_a_spike_then_throttles():
    """60 s of saved capacity at 350/s absorb 60 x 350 = 21,000 writes above the rate before throttling."""
    base = bare("async", 1, rate=700.0, duration=40.0, warmup=0.0,
                endpoint=pure(name="events_write", queries=0, nosql_writes=1)).with_knobs(nosql_max_attempts=1)
    burst = base.with_knobs(nosql_start_burst_s=60.0)
    assert simulate(burst, seed=1).summary.error_rate == 0.0  # 40 s x 350 surplus = 14,000 < 21,000
    assert simulate(base, seed=1).summary.error_rate > 0.4


@pytest.mark.parametrize("cache, caches", [("redis", 1), ("local", 4)])
def test_cache_hit_ratio_emerges_as_the_ttl_formula_predicts(cache, caches):
    """Zipf keys, TTL caches: the measured hit ratio matches r T / (1 + r T) per key, within 0.01."""
    rate, ttl, keys = 200.0, 10.0, 2000
    scenario = bare("async", caches, rate=rate, duration=120.0, warmup=30.0,
                    endpoint=pure(io=Exponential(5.0), cacheable=True))
    scenario = scenario.with_knobs(cache=cache, ttl_s=ttl, key_count=keys, zipf_alpha=1.0)
    hits = np.mean([simulate(scenario, seed=s).summary.cache_hit_ratio for s in range(4)])
    assert hits == pytest.approx(ttl_hit_ratio(rate, ttl, keys, 1.0, caches), abs=0.01)


def test_backends_default_to_sqlalchemy_and_botocore_settings():
    b = Backends()
    assert (b.pool_size, b.max_overflow, b.pool_timeout_s) == (5, 10, 30.0)
    assert (b.nosql_max_attempts, b.nosql_backoff_base_ms, b.nosql_backoff_factor) == (10, 50.0, 2.0)
    h = Hardware()
    assert (h.api_cores, h.api_memory_mb, h.db_cores, h.db_memory_mb) == (2, 4096, 4, 16384)
    assert (h.nosql_read_units, h.nosql_write_units) == (1000, 350)
