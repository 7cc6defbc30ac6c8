"""The apps log every DB connection their pools open and close; measure() keeps the window's."""

from __future__ import annotations

import pytest

from lab_apps.measure import measure
from simulator import Scenario, replicate

# one event loop whose pool keeps a single idle connection, with 20 ms DB waits at 100 req/s: about
# two requests in the DB phase at once, so SQLAlchemy's QueuePool opens and closes connections
CHURNING = Scenario().with_knobs(model="async", workers=1, pool_size=1, max_overflow=10, io_ms=20.0,
                                 rate_rps=100.0, duration_s=4.0, warmup_s=1.0)


def test_a_pool_past_its_size_opens_and_closes_connections_and_times_each_open():
    run = measure(CHURNING, progress=None)
    pool = run.meta["app_pool"]
    assert pool["requests"] == pytest.approx(400, abs=60)
    assert pool["opened"] >= 10
    # a pool keeps at most pool_size + max_overflow: what it opened beyond those it closed
    assert abs(pool["opened"] - pool["closed"]) <= 11
    assert 0 < pool["open_ms_mean"] <= pool["open_ms_p95"] < 1000
    # the model churns too, on the same scenario
    simulated = replicate(CHURNING, allow_overcommit=True)
    assert simulated.meta["db_connections_opened"] / simulated.meta["requests_total"] > 0.02


def test_sync_workers_within_pool_size_open_nothing_after_the_warm_up():
    """A sync worker holds one connection at a time, and its pool keeps 5: once each has one, none churn."""
    run = measure(Scenario().with_knobs(model="sync", workers=2, rate_rps=40.0, duration_s=3.0, warmup_s=1.0),
                  progress=None)
    pool = run.meta["app_pool"]
    assert pool["requests"] > 80
    assert pool["opened"] == 0 and pool["closed"] == 0 and pool["open_ms_mean"] is None
