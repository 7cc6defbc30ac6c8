"""Sweeps: parsing, every point computed, the same answers on every executor."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from simulator import Scenario, parse_sweep, simulate, sweep

SHORT = Scenario().with_knobs(duration_s=4.0, warmup_s=1.0)


def test_parse_sweep_ranges_and_lists():
    assert parse_sweep("rate=10:50:10") == ("rate_rps", [10.0, 20.0, 30.0, 40.0, 50.0])
    assert parse_sweep("workers=1,2,4") == ("workers", [1, 2, 4])
    assert parse_sweep("model=sync,async") == ("model", ["sync", "async"])
    assert parse_sweep("ttl_s=30:90:30") == ("ttl_s", [30.0, 60.0, 90.0])


@pytest.mark.parametrize("spec, words", [
    ("rate", ["KNOB=START:STOP:STEP"]),
    ("speed=1:2:1", ["unknown knob 'speed'"]),
    ("rate=10:5:1", ["STOP >= START"]),
    ("rate=a:b:c", ["must be numbers"]),
    ("workers=1,two", ["must be numbers"]),
    ("model=sync:async:1", ["range is START:STOP:STEP of numbers"]),
])
def test_parse_sweep_rejects_bad_specs_by_name(spec, words):
    with pytest.raises(ValueError) as err:
        parse_sweep(spec)
    for word in words:
        assert word in str(err.value)


def test_sweep_matches_one_by_one_simulation_on_local_processes():
    points = sweep(SHORT, {"rate_rps": [50.0, 150.0], "model": ["sync", "async"]}, seeds=[1, 2])
    assert len(points) == 8
    for p in points:
        expected = simulate(SHORT.with_knobs(**p.knobs), seed=p.seed).summary
        assert p.summary.p99_ms == expected.p99_ms and p.summary.requests == expected.requests


def test_sweep_is_the_same_on_any_executor():
    grid = {"workers": [1, 2, 3]}
    serial = sweep(SHORT, grid, executor="serial")
    with ThreadPoolExecutor(2) as pool:
        threaded = sweep(SHORT, grid, executor=pool)
    assert [p.summary.p50_ms for p in serial] == [p.summary.p50_ms for p in threaded]


def test_sweep_validates_every_point_before_running_any():
    with pytest.raises(ValueError, match="Server.workers"):
        sweep(SHORT, {"workers": [2, 0]}, executor="serial")
    with pytest.raises(ValueError, match="does not fit"):
        sweep(SHORT, {"workers": [2, 90]}, executor="serial")


def test_sweep_runs_on_a_dask_local_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        points = sweep(SHORT, {"rate_rps": [40.0, 80.0, 120.0]}, executor=client)
    assert [p.knobs["rate_rps"] for p in points] == [40.0, 80.0, 120.0]
    local = sweep(SHORT, {"rate_rps": [40.0, 80.0, 120.0]}, executor="serial")
    assert [p.summary for p in points] == [p.summary for p in local]
