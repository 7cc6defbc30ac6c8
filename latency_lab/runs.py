"""Measured runs the notebooks use: measured now (live) or read from ``datasets/runs`` (replay).

Each recording has a name, the preset it starts from and the knobs it
turns. Live, ``measured(name)`` starts the app and measures that scenario
(shortened in smoke mode); in replay it loads the run recorded on the
reference machine. ``python -m latency_lab.runs`` records them all again.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.result import Result
from simulator.scenario import Scenario

from . import modes


@dataclass(frozen=True)
class Recording:
    name: str
    preset: str  # a file in datasets/scenarios, without .toml
    knobs: dict[str, Any] = field(default_factory=dict)
    rates: tuple[float, ...] = ()  # a comparison (compare()) at these rates, else one run
    needs: tuple[str, ...] = ()  # "redis", "postgresql"
    duration_s: float = 20.0
    smoke_s: float = 3.0

    def scenario(self) -> Scenario:
        sc = preset(self.preset).with_knobs(**self.knobs)
        return sc.with_knobs(duration_s=modes.seconds(self.duration_s, self.smoke_s),
                             warmup_s=modes.seconds(sc.workload.warmup_s, 1.0))


RECORDINGS = {r.name: r for r in (
    # notebook 02: the two apps at the same rate, open loop; one closed loop
    Recording("flask_sync4_open", "reference_flask_sync", {"rate_rps": 150.0}),
    Recording("fastapi_async1_open", "reference_fastapi_async", {"rate_rps": 150.0}),
    Recording("fastapi_async1_closed", "reference_fastapi_async",
              {"arrival": "closed", "users": 20, "think_time_s": 0.1}),
    # notebook 03: simulated against measured
    Recording("compare_flask_sync4", "reference_flask_sync", rates=(40.0, 80.0, 120.0, 160.0, 200.0)),
    Recording("compare_fastapi_async1", "reference_fastapi_async", rates=(30.0, 60.0, 90.0, 120.0, 150.0)),
    # notebook 04: 8 per-process caches against one shared Redis
    Recording("cache_local_flask8", "reference_flask_sync",
              {"workers": 8, "cache": "local", "cacheable": True, "ttl_s": 60.0, "rate_rps": 120.0}),
    Recording("cache_redis_flask8", "reference_flask_sync",
              {"workers": 8, "cache": "redis", "cacheable": True, "ttl_s": 60.0, "rate_rps": 120.0},
              needs=("redis",)),
    # notebook 05: the pool on PostgreSQL, too small and big enough
    Recording("pool_small_postgres", "reference_fastapi_async",
              {"database": "postgresql", "io_ms": 20.0, "pool_size": 2, "max_overflow": 0,
               "pool_timeout_s": 1.0, "rate_rps": 120.0}, needs=("postgresql",)),
    Recording("pool_large_postgres", "reference_fastapi_async",
              {"database": "postgresql", "io_ms": 20.0, "pool_size": 10, "max_overflow": 10,
               "pool_timeout_s": 1.0, "rate_rps": 120.0}, needs=("postgresql",)),
)}


def preset(name: str) -> Scenario:
    """A scenario preset from ``datasets/scenarios`` by name (without ``.toml``)."""
    path = modes.datasets_dir() / "scenarios" / f"{name}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.toml"))
        raise ValueError(f"no scenario preset {name!r}; presets are: {', '.join(known)}")
    return Scenario.load(path)


def _recording(name: str) -> Recording:
    if name not in RECORDINGS:
        raise ValueError(f"no recording {name!r}; recordings are: {', '.join(RECORDINGS)}")
    return RECORDINGS[name]


def runs_dir() -> Path:
    return modes.datasets_dir() / "runs"


def _urls(rec: Recording) -> dict[str, str]:
    from . import services

    urls = {}
    for need in rec.needs:
        found = services.redis() if need == "redis" else services.postgres()
        if not found:
            raise services.ServiceMissing(f"{rec.name} needs {found.line()}")
        urls["redis_url" if need == "redis" else "database_url"] = found.url
    return urls


def available(name: str) -> tuple[bool, str]:
    """(can this recording be had in the current mode, why not)."""
    rec = _recording(name)
    if modes.mode() == "replay":
        path = runs_dir() / rec.name
        return (path.is_dir(), "" if path.is_dir() else f"no recorded run at {path}")
    from .services import ServiceMissing

    try:
        _urls(rec)
    except ServiceMissing as exc:
        if os.environ.get("LAB_REQUIRE_SERVICES") == "1":
            raise
        return False, str(exc)
    return True, ""


def measured(name: str, *, progress="auto", watch=None, seed: int = 0) -> Result:
    """The measured run ``name``: measured now in live mode, the recorded one in replay."""
    rec = _recording(name)
    if rec.rates:
        raise ValueError(f"{name} is a comparison: use comparison({name!r})")
    if modes.mode() == "replay":
        return Result.load(runs_dir() / rec.name)
    from lab_apps.measure import measure

    return measure(rec.scenario(), seed=seed, progress=progress, watch=watch, **_urls(rec))


def comparison(name: str, *, progress="auto", seed: int = 0):
    """The comparison ``name`` (lab_apps.compare.Comparison): run now, or rebuilt from its recorded
    measured runs, the model re-run on them (so replay still exercises the model)."""
    from lab_apps.compare import Comparison, Point, compare
    from lab_apps.measure import calibrate
    from simulator.replicate import replicate

    rec = _recording(name)
    if not rec.rates:
        raise ValueError(f"{name} is a single run: use measured({name!r})")
    if modes.mode() == "live":
        rates = [rec.rates[0], rec.rates[-1]] if modes.smoke() else list(rec.rates)  # smoke: the two ends
        return compare(rec.scenario(), rates, seed=seed, progress=progress, **_urls(rec))
    folder = runs_dir() / rec.name
    calibration = Result.load(folder / "calibration")
    cpu_run = Result.load(folder / "cpu_calibration") if (folder / "cpu_calibration").is_dir() else None
    scenario = Scenario.load(folder / "scenario.toml")
    calibrated = calibrate(calibration, scenario, cpu_from=cpu_run)
    out = Comparison(scenario=scenario, calibrated=calibrated, calibration=calibration, cpu_calibration=cpu_run)
    for rate_dir in sorted(folder.glob("rate_*"), key=lambda p: float(p.name[5:])):
        rate = float(rate_dir.name[5:])
        sim = replicate(calibrated.with_knobs(rate_rps=rate), seed=seed, allow_overcommit=True)
        out.points.append(Point(rate_rps=rate, simulated=sim, measured=Result.load(rate_dir)))
    return out


def record(names=None, *, replace: bool = False) -> list[Path]:
    """Measure the recordings on this machine and save them under ``datasets/runs``."""
    from lab_apps.compare import compare

    done = []
    for name in names or list(RECORDINGS):
        rec = _recording(name)
        target = runs_dir() / rec.name
        if target.exists() and not replace:
            raise FileExistsError(f"{target} exists: pass --replace to record it again")
        tmp = target.with_name(f".{target.name}.recording")
        shutil.rmtree(tmp, ignore_errors=True)
        sc = dataclasses.replace(rec, smoke_s=rec.duration_s).scenario()  # full length, whatever the mode
        if rec.rates:
            c = compare(sc, list(rec.rates), progress=None, **_urls(rec))
            tmp.mkdir(parents=True)
            (tmp / "scenario.toml").write_text(sc.to_toml())
            c.calibration.save(tmp / "calibration", compress=True)
            if c.cpu_calibration is not None:
                c.cpu_calibration.save(tmp / "cpu_calibration", compress=True)
            for p in c.points:
                p.measured.save(tmp / f"rate_{p.rate_rps:g}", compress=True)
            print(c.table(), file=sys.stderr)
        else:
            from lab_apps.measure import measure

            r = measure(sc, progress=None, **_urls(rec))
            r.save(tmp, compress=True)
            print(f"{name}: {r}", file=sys.stderr)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)  # a recording appears whole or not at all
        done.append(target)
    return done


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latency_lab.runs",
                                     description="Record the measured runs the notebooks replay.")
    parser.add_argument("names", nargs="*", help=f"recordings (default: all): {', '.join(RECORDINGS)}")
    parser.add_argument("--replace", action="store_true", help="record again over existing runs")
    args = parser.parse_args(argv)
    for path in record(args.names or None, replace=args.replace):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
