"""calibrate() tells how the host shares a core among worker processes (Hardware.api_cpu_sharing)
from a run near capacity: the lab's host has kept Flask's four workers in step on one day and out
of step on another, and near capacity that decides the queue."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lab_apps.measure import _fit_sharing, calibrate
from simulator import Scenario, simulate
from simulator.result import Result

RECORDED = Path(__file__).resolve().parents[2] / "datasets" / "runs" / "compare_flask_sync4"


@pytest.fixture(scope="module")
def flask():
    """Flask x 4 on one core as calibrated from the recorded comparison (2026-12-06), and its CPU run."""
    low, cpu = Result.load(RECORDED / "calibration"), Result.load(RECORDED / "cpu_calibration")
    return calibrate(low, Scenario.load(RECORDED / "scenario.toml"), cpu_from=cpu), cpu


def test_the_host_that_recorded_the_comparison_kept_its_workers_out_of_step(flask):
    """At 196 req/s its four workers had a p50 of 15 ms and a p95 of 30 ms; in step, the model says
    twice that p95."""
    fitted, cpu = flask
    assert fitted.hardware.api_cpu_sharing == "round-robin"
    in_step = simulate(fitted.with_knobs(api_cpu_sharing="fair", rate_rps=cpu.summary.throughput_rps), seed=1)
    assert in_step.summary.p95_ms > 1.5 * cpu.summary.p95_ms


@pytest.mark.parametrize("truth", ["fair", "round-robin"])
def test_the_way_of_sharing_is_recovered_from_runs_made_by_it(flask, truth):
    """Runs of the model standing in for measured ones, 20 s at the CPU run's 196 req/s (86% of
    what the workers in step serve), one way of sharing or the other: the fit names the way that
    made them in most. Not in all: a 20-s run is one draw, and at this load the two overlap in some
    draws (where the choice matters least)."""
    fitted, _ = flask
    right = 0
    for seed in range(11, 19):
        run = dataclasses.replace(simulate(fitted.with_knobs(rate_rps=196.0, api_cpu_sharing=truth), seed=seed),
                                  kind="measured")
        other = "fair" if truth == "round-robin" else "round-robin"
        right += _fit_sharing(fitted.with_knobs(api_cpu_sharing=other), run).hardware.api_cpu_sharing == truth
    assert right >= 6


def test_with_no_more_workers_than_cores_nobody_shares_and_it_is_left_alone(flask):
    fitted, _ = flask
    one = fitted.with_knobs(workers=1)
    run = dataclasses.replace(simulate(one.with_knobs(rate_rps=100.0), seed=3), kind="measured")
    assert _fit_sharing(one, run) is one
