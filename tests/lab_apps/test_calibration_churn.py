"""calibrate() does not count the pool's churn twice: the model opens and closes connections itself."""

from __future__ import annotations

import dataclasses

import pytest

from lab_apps.measure import _without_churn_cpu
from simulator import Scenario, simulate

RECIPE_CPU_MS = 2.5  # the reference recipe on SQLite: 2 ms in the handler, 0.5 ms in the query


def test_the_framework_cpu_is_recovered_from_a_run_whose_pool_churned():
    """A run of the model stands in for a measured one: one event loop at 190 req/s with the
    default pool (5 + 10) opens and closes hundreds of connections, and its CPU per request, as
    /proc would count it, includes that. Taken whole, the framework's CPU comes out high; less
    the churn, it is the 1.2 ms the run was given."""
    truth = Scenario().with_knobs(model="async", workers=1, api_cores=1, duration_s=30.0, warmup_s=3.0,
                                  framework_cpu_ms=1.2, rate_rps=190.0)
    run = simulate(truth, seed=4)
    assert run.meta["db_connections_closed"] > 100
    cpu_ms = run.summary.utilisation["api_cpu"] * 1000 / run.summary.throughput_rps
    run = dataclasses.replace(run, meta={**run.meta, "app_cpu_ms_per_request": cpu_ms})
    whole = cpu_ms - RECIPE_CPU_MS
    assert whole > 1.2 * 1.05  # the churn is more than 5% of the framework's CPU here
    fitted = _without_churn_cpu(truth.with_knobs(framework_cpu_ms=whole), run, whole)
    assert fitted.server.framework_cpu_ms == pytest.approx(1.2, rel=0.03)
