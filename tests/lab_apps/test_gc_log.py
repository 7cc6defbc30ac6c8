"""The apps log their garbage collections; measure() keeps those of the measured window and
calibrate() turns them into the model's GC pauses."""

from __future__ import annotations

import pytest

from lab_apps.measure import calibrate, measure
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
