"""Saved runs: all or nothing, and what is loaded is what was saved."""

import numpy as np
import pytest

from simulator import Result, Scenario, simulate


def test_save_and_load_round_trip(tmp_path):
    r = simulate(Scenario().with_knobs(duration_s=5.0, cache="local"), seed=3)
    back = Result.load(r.save(tmp_path / "run"))
    assert back.scenario == r.scenario and back.seed == 3 and back.kind == "simulated"
    for column, values in r.rows.items():
        assert np.allclose(back.rows[column], values, atol=1e-6), column
    assert back.summary.p99_ms == pytest.approx(r.summary.p99_ms)
    assert back.meta["machine"]["cpu_count"] >= 1


def test_save_refuses_to_overwrite_and_leaves_nothing_half_written(tmp_path):
    r = simulate(Scenario().with_knobs(duration_s=2.0), seed=1)
    r.save(tmp_path / "run")
    with pytest.raises(FileExistsError):
        r.save(tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_summary_counts_timeouts_and_errors_apart():
    """Half the requests wait 2 s on the DB, the client gives up after 1 s."""
    from dataclasses import replace

    from simulator import Endpoint, Fixed

    fast = Endpoint(name="fast", cpu_ms=Fixed(1.0), io_ms=Fixed(5.0))
    slow = Endpoint(name="slow", cpu_ms=Fixed(1.0), io_ms=Fixed(2000.0))
    # a pool of 40: the 20 slow requests in flight must not starve the fast ones of connections
    s = Scenario().with_knobs(model="async", workers=1, rate_rps=20.0, duration_s=30.0, timeout_s=1.0,
                              pool_size=40)
    s = replace(s, workload=replace(s.workload, endpoints=(fast, slow)))
    r = simulate(s, seed=1)
    timed_out = r.rows["error"] == 5
    assert set(r.rows["endpoint"][timed_out]) == {1}
    assert r.summary.timeouts == timed_out.sum() and r.summary.errors == 0
    assert r.summary.error_rate == pytest.approx(0.5, abs=0.05)
    assert (r.rows["latency_ms"][timed_out] == 1000.0).all()
    assert r.summary.p99_ms < 10.0  # percentiles are of the successes
