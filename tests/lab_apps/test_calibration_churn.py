"""calibrate() splits the CPU the recipe does not explain: the pool's churn and waking idle cores
are the model's own, so they are not counted in the framework's CPU."""

from __future__ import annotations

import dataclasses

import pytest

from lab_apps.measure import _split_cpu
from simulator import Scenario, simulate

RECIPE_CPU_MS = 2.5  # the reference recipe on SQLite: 2 ms in the handler, 0.5 ms in the query
LOOP = Scenario().with_knobs(model="async", workers=1, api_cores=1, duration_s=30.0, warmup_s=3.0)


def as_measured(truth: Scenario, rate: float, seed: int):
    """A run of the model standing in for a measured one, with its CPU per request as /proc counts it."""
    run = simulate(truth.with_knobs(rate_rps=rate), seed=seed)
    cpu_ms = run.summary.utilisation["api_cpu"] * 1000 / run.summary.throughput_rps
    return dataclasses.replace(run, meta={**run.meta, "app_cpu_ms_per_request": cpu_ms}), cpu_ms - RECIPE_CPU_MS


def test_the_framework_cpu_is_recovered_from_a_run_whose_pool_churned():
    """One event loop at 190 req/s with the default pool (5 + 10) opens and closes hundreds of
    connections, and its CPU per request includes that. Taken whole, the framework's CPU comes
    out high; less the churn, it is the 1.2 ms the run was given."""
    truth = LOOP.with_knobs(framework_cpu_ms=1.2)
    run, whole = as_measured(truth, 190.0, seed=4)
    assert run.meta["db_connections_closed"] > 100
    assert whole > 1.2 * 1.05  # the churn is more than 5% of the framework's CPU here
    fitted = _split_cpu(truth.with_knobs(framework_cpu_ms=whole), (run, whole), None)
    assert fitted.server.framework_cpu_ms == pytest.approx(1.2, rel=0.03)
    assert fitted.hardware.wake_cpu_ms == 0.0  # one run cannot tell a wake-up cost


def test_a_low_and_a_high_run_recover_the_framework_and_the_wake_up_cost():
    """The CPU per request of a loop whose idle core pays 1.5 ms to wake after a long idle (0.3 ms
    at every idle before the model's WAKE_COLD_S; calibration fits 1.3-2.8 ms on this host now)
    falls from low load to high (fewer bursts find it long idle): a low run and a high run recover
    both figures."""
    truth = LOOP.with_knobs(framework_cpu_ms=1.2, wake_cpu_ms=1.5)
    low, low_ms = as_measured(truth, 20.0, seed=5)
    high, high_ms = as_measured(truth, 190.0, seed=6)
    assert low_ms - high_ms > 0.2  # what calibration taking one run would get wrong
    fitted = _split_cpu(truth.with_knobs(framework_cpu_ms=high_ms, wake_cpu_ms=0.0), (high, high_ms),
                        (low, low_ms))
    assert fitted.server.framework_cpu_ms == pytest.approx(1.2, rel=0.05)
    assert fitted.hardware.wake_cpu_ms == pytest.approx(1.5, rel=0.1)


def test_given_a_runs_own_cpu_the_model_spends_what_that_run_measured():
    """given_run_cpu(): a later run on a host where the framework's CPU took 1.5 ms, not the 1.2
    calibrated. Re-fitted to that run, the framework's CPU is 1.5 again, the wake-up cost stays as
    calibrated, and the model at the run's rate spends the CPU per request the run measured."""
    from lab_apps.measure import given_run_cpu

    calibrated = LOOP.with_knobs(framework_cpu_ms=1.2, wake_cpu_ms=0.3)
    run, _ = as_measured(calibrated.with_knobs(framework_cpu_ms=1.5), 150.0, seed=7)
    run = dataclasses.replace(run, kind="measured")
    given = given_run_cpu(calibrated, run)
    assert given.server.framework_cpu_ms == pytest.approx(1.5, rel=0.03)
    assert given.hardware.wake_cpu_ms == 0.3
    assert given.workload.rate_rps == 150.0
    again, cpu_ms = as_measured(given, 150.0, seed=7)
    assert cpu_ms + RECIPE_CPU_MS == pytest.approx(run.meta["app_cpu_ms_per_request"], rel=0.01)
    with pytest.raises(ValueError, match="measured run"):
        given_run_cpu(calibrated, dataclasses.replace(run, kind="simulated"))
