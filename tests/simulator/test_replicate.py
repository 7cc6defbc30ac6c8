"""replicate(): the model's answer for one experiment, pooled over seeds, against one run and M/M/1."""

import math

import numpy as np
import pytest

from simulator import REPLICATIONS, Exponential, replicate, simulate
from simulator.result import succeeded

from .conftest import bare, pure

# One sync worker, exponential 10 ms waits, Poisson arrivals at 50 req/s: M/M/1 first come,
# first served, whose time in system is exponential with rate mu - lambda.
RATE, SERVICE_S = 50.0, 0.010
MM1 = bare("sync", 1, rate=RATE, duration=12.0, warmup=2.0, endpoint=pure(io=Exponential(SERVICE_S * 1000)))


def test_one_replication_is_the_run_itself():
    one = replicate(MM1, replications=1, seed=3)
    assert one.summary == simulate(MM1, seed=3).summary
    assert "replications" not in one.meta


def test_the_pool_holds_every_run_and_averages_the_rates():
    runs = [simulate(MM1, seed=s) for s in (5, 6, 7)]
    pooled = replicate(MM1, replications=3, seed=5)
    latency = np.concatenate([r.rows["latency_ms"][succeeded(r.rows)] for r in runs])
    assert pooled.rows["latency_ms"].size == sum(r.rows["latency_ms"].size for r in runs)
    assert pooled.summary.requests == sum(r.summary.requests for r in runs)
    assert pooled.summary.p50_ms == pytest.approx(np.percentile(latency, 50))
    assert pooled.summary.p95_ms == pytest.approx(np.percentile(latency, 95))
    assert pooled.summary.throughput_rps == pytest.approx(np.mean([r.summary.throughput_rps for r in runs]))
    assert pooled.summary.utilisation["workers"] == pytest.approx(
        np.mean([r.summary.utilisation["workers"] for r in runs]))
    assert pooled.meta["requests_total"] == sum(r.meta["requests_total"] for r in runs)
    assert pooled.meta["replications"] == 3
    assert [r["seed"] for r in pooled.meta["replica_summaries"]] == [5, 6, 7]
    assert [r["p95_ms"] for r in pooled.meta["replica_summaries"]] == [r.summary.p95_ms for r in runs]


def test_pooling_shrinks_the_models_own_noise_around_the_m_m_1_median():
    """80 twelve-second runs: alone, and pooled eight at a time. The pooled medians scatter about
    1/sqrt(8) as much as single runs' (0.35; asserted under 0.6) and sit on M/M/1's median,
    ln 2 / (mu - lambda) = 13.9 ms, within 5%."""
    single = [simulate(MM1, seed=s).summary.p50_ms for s in range(80)]
    pooled = [replicate(MM1, replications=8, seed=8 * k).summary.p50_ms for k in range(10)]
    assert np.std(pooled) < 0.6 * np.std(single)
    median_ms = math.log(2) / (1 / SERVICE_S - RATE) * 1000
    assert np.mean(pooled) == pytest.approx(median_ms, rel=0.05)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "8"])
def test_a_bad_replication_count_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="replications"):
        replicate(MM1, replications=bad)


def test_a_bad_seed_is_refused_by_name():
    with pytest.raises(ValueError, match="seed"):
        replicate(MM1, seed=-1)


def test_by_default_it_pools_replications_runs():
    assert replicate(MM1).meta["replications"] == REPLICATIONS > 1
