"""calibration_runs() keeps its CPU runs below the app's real capacity.

The app here is a stand-in: it serves at most 250 req/s, and past 240 its queue grows (p50 400 ms
against 11 ms below). The model it is calibrated with overstates capacity (361 req/s), as the
calibrated model did on 2026-12-05 when its "85%" CPU run landed past FastAPI's capacity.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from lab_apps import compare as c
from simulator import Scenario

SERVES, QUEUES_FROM, MODEL_CAPACITY = 250.0, 240.0, 361.0


def _run(rate: float, cpu_ms: float | None, affinity=(1,)):
    return SimpleNamespace(
        scenario=SimpleNamespace(workload=SimpleNamespace(rate_rps=rate), hardware=SimpleNamespace(api_cores=2)),
        summary=SimpleNamespace(throughput_rps=min(rate, SERVES), p50_ms=11.0 if rate < QUEUES_FROM else 400.0),
        meta={"app_cpu_ms_per_request": cpu_ms, "app_cpu_affinity": list(affinity)})


@pytest.fixture
def app(monkeypatch):
    """The rates measured, in order, and which run each calibration took its CPU from."""
    seen = SimpleNamespace(rates=[], cpu_from=[], cpu_ms=3.8)
    monkeypatch.setattr(c, "predict", lambda sc: SimpleNamespace(capacity_rps=MODEL_CAPACITY))

    def measure(scenario, **_):
        seen.rates.append(scenario.workload.rate_rps)
        return _run(scenario.workload.rate_rps, seen.cpu_ms)

    def calibrate(low_run, scenario, cpu_from=None):
        seen.cpu_from.append(cpu_from.scenario.workload.rate_rps if cpu_from else None)
        return scenario

    monkeypatch.setattr(c, "measure", measure)
    monkeypatch.setattr(c, "calibrate", calibrate)
    return seen


def test_the_second_cpu_run_is_no_faster_than_the_first_runs_cpu_allows(app):
    sc = Scenario()
    _, _, cpu_run = c.calibration_runs(sc)
    low = round(c.PHASES_SHARE * MODEL_CAPACITY, 1)
    first = round(0.6 * MODEL_CAPACITY, 1)
    second = round(0.85 * 1000 / 3.8, 1)  # one core at 3.8 ms a request: 263 req/s, not the model's 361
    assert app.rates == pytest.approx([low, first, second], abs=0.11)
    assert cpu_run.scenario.workload.rate_rps == app.rates[-1] < QUEUES_FROM
    assert app.cpu_from == [None, first, app.rates[-1]]


def test_a_cpu_run_past_capacity_is_measured_again_below_it(app):
    app.cpu_ms = None  # no CPU figure to bound the rate: the model's 85% of 361 is past the app's 250
    _, _, cpu_run = c.calibration_runs(Scenario())
    assert app.rates[2] == pytest.approx(0.85 * MODEL_CAPACITY, abs=0.1)
    assert app.rates[3] == pytest.approx(0.85 * SERVES, abs=0.1)  # its share of what the app sustained
    assert len(app.rates) == 4
    assert cpu_run.scenario.workload.rate_rps == app.rates[3]  # the run below capacity is the one kept
    assert app.cpu_from[-1] == app.rates[3]


def test_past_capacity_reads_throughput_and_queueing():
    low = _run(20.0, 4.0)
    assert not c.past_capacity(_run(200.0, 3.8), low)
    assert c.past_capacity(_run(300.0, 3.8), low)  # answered 250 of 300 req/s
    queued = _run(245.0, 3.8)  # answered all it was offered, but its p50 is 36 times the low run's
    assert queued.summary.throughput_rps == 245.0 and c.past_capacity(queued, low)
    broken = _run(100.0, 3.8)
    broken.summary.p50_ms = math.nan  # no request succeeded
    assert c.past_capacity(broken, low)


def test_cpu_bound_counts_the_cores_the_app_was_pinned_to():
    assert c.cpu_bound_rps(_run(100.0, 4.0, affinity=(1,))) == pytest.approx(250.0)
    assert c.cpu_bound_rps(_run(100.0, 4.0, affinity=(0, 1))) == pytest.approx(500.0)
    assert c.cpu_bound_rps(_run(100.0, 4.0, affinity=())) == pytest.approx(500.0)  # not pinned: api_cores
    assert c.cpu_bound_rps(_run(100.0, None)) == math.inf
