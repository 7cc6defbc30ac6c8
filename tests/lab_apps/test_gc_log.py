"""The apps log their garbage collections; measure() keeps those of the measured window and
calibrate() turns them into the model's GC pauses."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from lab_apps.measure import _gc_gen2_pause, calibrate, measure
from simulator import Scenario

# a low threshold so that a short run collects often, in two sync workers
OFTEN = Scenario().with_knobs(model="sync", workers=2, rate_rps=40.0, duration_s=5.0, warmup_s=1.0,
                              gc_threshold=100)


def test_collections_are_logged_per_request_and_calibrated_at_the_default_threshold():
    run = measure(OFTEN, progress=None)
    logged = run.meta["app_gc"]
    assert logged["threshold"] == 100
    assert logged["requests"] == pytest.approx(200, abs=40)
    assert logged["gen0"][0] >= 20 and logged["gen0"][1] > 0  # a collection every few requests
    assert logged["gen1"][0] >= 2
    # each full collection since the workers started, timed from the schedule's start: those in
    # the window are the ones counted, each worker made at least one (at start, after its imports)
    full = logged["full"]
    assert full == sorted(full) and all(pause > 0 for _, pause, _ in full)
    assert sum(1.0 <= t <= 6.0 for t, _, _ in full) == logged["gen2"][0]
    assert len({pid for _, _, pid in full}) == 2 and min(t for t, _, _ in full) < 0
    fitted = calibrate(run)
    s = fitted.server
    assert s.gc_threshold == 100
    # stated at CPython's 700, so at the run's own threshold the model collects as often as the app did
    assert s.gc_gen1_per_request == pytest.approx(logged["gen1"][0] / logged["requests"] * 100 / 700)
    assert s.gc_pauses[0][0] == pytest.approx(logged["gen1"][0] / logged["requests"])
    assert s.gc_gen1_ms == pytest.approx(logged["gen1"][1] / logged["gen1"][0])


def test_threshold_zero_turns_the_apps_collector_off():
    logged = measure(OFTEN.with_knobs(gc_threshold=0), progress=None).meta["app_gc"]
    assert logged["threshold"] == 0 and logged["gen0"][0] == 0 and logged["gen2"][0] == 0


def test_a_full_collections_pause_is_fitted_against_the_requests_in_flight():
    """Before the load, no request in flight: the pause's base. In the window, the requests
    scheduled and not yet answered: the growth, a least-squares line through the base."""
    scenario = Scenario().with_knobs(duration_s=10.0, warmup_s=2.0)
    scheduled = np.arange(0.0, 12.0, 0.01)  # 100 req/s, each answered 0.2 s later: 20 in flight
    rows = {"scheduled_s": scheduled, "end_s": scheduled + 0.2}
    run = SimpleNamespace(scenario=scenario, rows=rows, meta={"app_gc": {"full": [
        [-1.0, 30.0, 1], [-0.5, 50.0, 2],  # before the load: base 40
        [1.0, 999.0, 1],  # in the warm-up: no rows to count from, left out
        [5.005, 40.0 + 20 * 0.5, 1],  # 20 in flight, 0.5 ms each
    ]}})
    assert _gc_gen2_pause([run]) == pytest.approx(
        {"gc_gen2_ms": 40.0, "gc_gen2_ms_per_request_in_flight": 0.5, "gc_gen2_max_ms": 50.0})
    # a pause that does not grow is not fitted as shrinking; without both kinds of point, nothing
    run.meta["app_gc"]["full"][3][1] = 20.0
    assert _gc_gen2_pause([run])["gc_gen2_ms_per_request_in_flight"] == 0.0
    run.meta["app_gc"]["full"] = [[-1.0, 30.0, 1]]
    assert _gc_gen2_pause([run]) == {}
