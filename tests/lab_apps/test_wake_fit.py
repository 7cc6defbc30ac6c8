"""calibrate()'s wake-up cost: fitted from the CPU per request of two runs at two loads."""

from __future__ import annotations

import dataclasses

import pytest

from lab_apps.measure import _fit_wake_cost
from simulator import Scenario, simulate

RECIPE_CPU_MS = 2.5  # the reference recipe on SQLite: 2 ms in the handler, 0.5 ms in the query


def _as_measured(scenario: Scenario, rate: float):
    """A run of the model standing in for a measured one: its CPU per request as /proc would count it."""
    r = simulate(scenario.with_knobs(rate_rps=rate), seed=5, allow_overcommit=True)
    cpu_ms = r.summary.utilisation["api_cpu"] * scenario.hardware.api_cores * 1000 / r.summary.throughput_rps
    return dataclasses.replace(r, meta={**r.meta, "app_cpu_ms_per_request": cpu_ms})


@pytest.fixture(scope="module")
def truth() -> Scenario:
    return Scenario().with_knobs(model="sync", workers=4, api_cores=1, duration_s=60.0, warmup_s=5.0,
                                 framework_cpu_ms=1.0, wake_cpu_ms=0.3)


def test_the_wake_cost_and_the_framework_cpu_are_recovered_from_two_loads(truth):
    low, busy = _as_measured(truth, 20.0), _as_measured(truth, 140.0)
    assert low.meta["app_cpu_ms_per_request"] > busy.meta["app_cpu_ms_per_request"] + 0.2  # it does fall
    start = truth.with_knobs(framework_cpu_ms=1.5, wake_cpu_ms=0.0)  # what calibrate() starts from
    fitted = _fit_wake_cost(start, low, busy, RECIPE_CPU_MS)
    assert fitted.server.wake_cpu_ms == pytest.approx(0.3, rel=0.15)
    assert fitted.server.framework_cpu_ms == pytest.approx(1.0, rel=0.10)


def test_no_fall_in_cpu_between_the_loads_fits_no_wake_cost(truth):
    flat = truth.with_knobs(wake_cpu_ms=0.0)
    low, busy = _as_measured(flat, 20.0), _as_measured(flat, 140.0)
    busy.meta["app_cpu_ms_per_request"] = low.meta["app_cpu_ms_per_request"] + 0.1  # noise: a rise
    start = flat.with_knobs(framework_cpu_ms=1.2)
    assert _fit_wake_cost(start, low, busy, RECIPE_CPU_MS) == start


def test_a_fall_too_steep_for_wake_ups_is_left_unexplained(truth):
    """More CPU saved between the loads than the framework's whole cost: not this mechanism."""
    low, busy = _as_measured(truth, 20.0), _as_measured(truth, 140.0)
    low.meta["app_cpu_ms_per_request"] = busy.meta["app_cpu_ms_per_request"] + 3.0
    start = truth.with_knobs(framework_cpu_ms=1.2, wake_cpu_ms=0.0)
    assert _fit_wake_cost(start, low, busy, RECIPE_CPU_MS) == start
