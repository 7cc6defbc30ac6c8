"""Notebook 01's explorer callbacks, the live chart, replay of recorded runs, and the modes."""

from __future__ import annotations

import numpy as np
import pytest

from latency_lab import modes, runs
from latency_lab.explorer import LoadCurveExplorer
from latency_lab.figures import LiveChart
from simulator.result import COLUMNS


@pytest.fixture
def smoke(monkeypatch):
    monkeypatch.setenv("LAB_SMOKE", "1")


def test_explorer_workers_slider_moves_the_sync_curve_only(smoke):
    ex = LoadCurveExplorer(workers=2, threads=4, cpu_ms=2.0, io_ms=20.0)
    sync_p99 = ex.figure.data[0]
    before_x, before_y = np.array(sync_p99.x), np.array(sync_p99.y)
    async_before = np.array(ex.figure.data[6].y)
    cap_before = ex.curves["sync"].capacity_rps
    ex.workers.value = 8  # what the slider does in the browser
    assert ex.curves["sync"].capacity_rps == pytest.approx(4 * cap_before, rel=0.05)
    after_x = np.array(ex.figure.data[0].x)
    assert after_x.max() > 2 * before_x.max()  # the sync curve now reaches 4x further before saturating
    assert "sync" in ex.figure.layout.title.text and "8 worker(s)" in ex.figure.layout.title.text
    assert not np.array_equal(before_y, np.array(ex.figure.data[0].y))
    assert np.array(ex.figure.data[6].y).size >= async_before.size  # async is not limited by workers


def test_explorer_rate_slider_moves_the_marker_and_the_readout(smoke):
    ex = LoadCurveExplorer(workers=4, io_ms=20.0)
    ex.rate.value = 50.0
    text_low = ex.readout.value
    assert ex.figure.layout.shapes[0].x0 == 50.0
    ex.rate.value = 500.0  # past 4 sync workers' capacity (~175 req/s)
    assert ex.figure.layout.shapes[0].x0 == 500.0
    assert "saturated" in ex.readout.value and text_low != ex.readout.value


def test_live_chart_groups_rows_by_second():
    chart = LiveChart()
    row = [0.0] * len(COLUMNS)
    names = list(COLUMNS)

    def make(t, ms):
        r = list(row)
        r[names.index("scheduled_s")], r[names.index("latency_ms")] = t, ms
        return tuple(r)

    chart.watch([make(0.1, 10.0), make(0.5, 30.0), make(1.2, 5.0)])
    assert list(chart.figure.data[0].x) == [0, 1]
    assert list(chart.figure.data[2].y) == [2, 1]
    chart.watch([make(1.7, 7.0)])
    assert list(chart.figure.data[2].y) == [2, 2]


def test_modes(monkeypatch):
    monkeypatch.delenv("LAB_MODE", raising=False)
    monkeypatch.delenv("BINDER_LAUNCH_HOST", raising=False)
    monkeypatch.delenv("BINDER_REQUEST", raising=False)
    monkeypatch.delenv("BINDER_REPO_URL", raising=False)
    assert modes.mode() == "live"
    monkeypatch.setenv("BINDER_REQUEST", "v2/gh/x/y/main")
    assert modes.mode() == "replay" and "REPLAY" in modes.describe()
    monkeypatch.setenv("LAB_MODE", "live")
    assert modes.mode() == "live"
    monkeypatch.setenv("LAB_MODE", "replayy")
    with pytest.raises(ValueError, match="LAB_MODE must be live or replay, got 'replayy'"):
        modes.mode()
    monkeypatch.setenv("LAB_SMOKE", "1")
    assert modes.seconds(60, 3) == 3.0


def test_every_recording_is_in_the_repository_and_replays(monkeypatch):
    monkeypatch.setenv("LAB_MODE", "replay")
    for name, rec in runs.RECORDINGS.items():
        assert runs.available(name) == (True, ""), name
        if rec.rates:
            continue
        r = runs.measured(name)
        assert r.kind == "measured" and r.summary.requests > 100
        assert r.meta["machine"]["cpu_count"] and r.meta["generator"]["cpu_affinity"] is not None
        assert r.meta["app_cpu_affinity"], "every recorded run says where the app ran"
        sc = rec.scenario()
        assert r.scenario.server == sc.server and r.scenario.backends == sc.backends, name


def test_recorded_cache_runs_count_hits(monkeypatch):
    monkeypatch.setenv("LAB_MODE", "replay")
    local, shared = runs.measured("cache_local_flask8"), runs.measured("cache_redis_flask8")
    assert 0 < local.summary.cache_hit_ratio < shared.summary.cache_hit_ratio < 1


def test_a_replayed_comparison_reruns_the_model_and_computes_errors_from_both_sides(monkeypatch):
    monkeypatch.setenv("LAB_MODE", "replay")
    c = runs.comparison("compare_flask_sync4")
    assert [p.rate_rps for p in c.points] == list(runs.RECORDINGS["compare_flask_sync4"].rates)
    for p, j in zip(c.points, c.to_json(), strict=True):
        assert p.simulated.kind == "simulated" and p.measured.kind == "measured"
        s, m = p.simulated.summary.p50_ms, p.measured.summary.p50_ms
        assert j["rel_error"]["p50"] == pytest.approx((s - m) / m)


def test_the_model_given_each_runs_cpu_is_simulated_from_that_run(monkeypatch):
    """Comparison.host_drift(): the recorded Flask comparison, each rate simulated again with its
    measured CPU per request: the model so told spends what the run measured, not what the
    calibration's model spends there."""
    from lab_apps.measure import given_run_cpu, speed_change
    from simulator import REPLICATIONS, replicate

    monkeypatch.setenv("LAB_MODE", "replay")
    c = runs.comparison("compare_flask_sync4")
    drift = c.host_drift()
    assert [d["rate_rps"] for d in drift] == [p.rate_rps for p in c.points]
    top, d = c.points[-1], drift[-1]
    assert d["run_cpu_ms"] == top.measured.meta["app_cpu_ms_per_request"]
    assert top.simulated.meta["replications"] == REPLICATIONS  # the prediction pools several runs of the model
    given = replicate(given_run_cpu(c.calibrated, top.measured), seed=top.simulated.seed, allow_overcommit=True)
    m = top.measured.summary
    assert d["p50"] == pytest.approx((given.summary.p50_ms - m.p50_ms) / m.p50_ms)
    spent = given.summary.utilisation["api_cpu"] * given.scenario.hardware.api_cores * 1000 / given.summary.throughput_rps
    assert spent == pytest.approx(d["run_cpu_ms"], rel=0.03)
    assert "run CPU ms" in c.host_drift_table().splitlines()[0]
    # how fast the host ran Python in the run, against the CPU calibration run (the apps' X-Lab-Speed)
    assert d["speed"] == pytest.approx(speed_change(top.measured, c.cpu_calibration))
    assert f"{d['speed']:+.0%}" in c.host_drift_table().splitlines()[-1]
    older = runs.comparison("compare_fastapi_async1")  # recorded before the apps sent X-Lab-Speed
    assert older.host_drift()[-1]["speed"] is None and " n/a " in older.host_drift_table().splitlines()[-1]


def test_runs_bad_names_and_kinds():
    with pytest.raises(ValueError, match="no recording 'nope'; recordings are: flask_sync4_open"):
        runs.measured("nope")
    with pytest.raises(ValueError, match="is a comparison"):
        runs.measured("compare_flask_sync4")
    with pytest.raises(ValueError, match="is a single run"):
        runs.comparison("flask_sync4_open")
    with pytest.raises(ValueError, match="no scenario preset 'case_999_before'"):
        runs.preset("case_999_before")


def test_record_refuses_to_overwrite(monkeypatch, tmp_path):
    import shutil

    shutil.copytree(modes.datasets_dir() / "scenarios", tmp_path / "scenarios")
    (tmp_path / "runs" / "flask_sync4_open").mkdir(parents=True)
    monkeypatch.setenv("LAB_DATASETS", str(tmp_path))
    with pytest.raises(FileExistsError, match="pass --replace"):
        runs.record(["flask_sync4_open"])
