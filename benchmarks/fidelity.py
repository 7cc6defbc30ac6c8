"""Fidelity: the calibrated model against the real apps, on this machine.

For Flask `sync` with 4 workers and FastAPI `async` with 1 worker, on the
reference recipe (2 ms CPU, one query with a 5 ms wait and 0.5 ms DB CPU,
cache off, SQLite), with the app on its own CPU and the load generator on
another:
  1. calibrate (a low-load run for phase times, then runs at 60% and 85% of the
     capacity each calibration predicts, for the app's CPU per request:
     lab_apps.compare.calibration_runs);
  2. predict capacity with the calibrated model;
  3. measure and simulate at five rates up to 85% of that capacity;
  4. measure and simulate at 130% of it: saturation throughput.
Targets: p50 within 10%, p95 within 20%, saturation throughput within 10%.
Runs from 68% up measure 36 s, the rest 12 s (``LONG_DURATION_S``). Takes about 12 minutes a repeat.

The prediction is made from the calibration, before the runs. On this shared
host the app's CPU per request moves by up to 12% between runs minutes apart,
and near capacity the queue turns that into tens of per cent of p50 and p95:
single repeats met from 14 to 18 of the 22 targets on 2026-12-06 (9 to 19
on earlier hosts), every figure up to 51% of capacity and few at 68-85%. So beside each
figure it prints the error of the same share simulated with that run's own
CPU per request (``given_run_cpu``), the host's state during the run as the
OS measured it, like the cores and affinity each run records: what is left
is the model's own error (20 of 20 share medians on 2026-12-06). Saturation
is not re-simulated that way: told a saturated run's own CPU per request,
the model's throughput is the utilisation law's. Each run also prints how
fast the host ran Python in it against the calibration's CPU run (the apps'
X-Lab-Speed).

``--repeat N`` runs the whole benchmark N times and reports each figure's
median error and range, which is the figure to quote. ``--save-runs DIR`` keeps
every measured run (rows and sidecar) there, to re-simulate without measuring again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lab_apps.compare import calibration_runs
from lab_apps.measure import (
    changes,
    full_collections,
    given_run_cpu,
    measure,
    speed_change,
    split_cpus,
)
from simulator import Scenario, predict, replicate

ROOT = Path(__file__).resolve().parents[1]
DURATION_S, WARMUP_S = 12.0, 3.0
# From 68% of capacity up, each run's window is three times as long. A run is one draw: in the
# model, a 12-s window at 85% moves the p50 by a coefficient of variation of 3-9% and the p95
# by 14-18% from seed to seed, so even a model without error would miss the p95 target by
# chance in a quarter of 12-s runs; 36 s brings them to 3-5% and 9-10% (benchmark of
# 2026-12-05, both apps). The model is asked for a run of the same length.
LONG_FROM_SHARE, LONG_DURATION_S = 0.68, 36.0
# The prediction pools this many runs of the model (simulator.replicate; compare() pools
# REPLICATIONS, 4, to stay quick): here time is no object and a sharper expected answer is.
MODEL_RUNS = 8
SHARES = (0.17, 0.34, 0.51, 0.68, 0.85)
CASES = (("reference_flask_sync.toml", {}), ("reference_fastapi_async.toml", {}))


def _cpu_note(run) -> str:
    note = f"app CPU {run.meta['app_cpu_ms_per_request']:.2f} ms/request"
    if run.meta.get("app_cores_busy_share") is not None:  # the app's cores: how busy, and not by the app
        note += f", its cores {run.meta['app_cores_busy_share']:.0%} busy ({run.meta['app_cores_other_share']:.0%} not the app)"
    if run.meta.get("app_context_switches_per_request"):  # involuntary: the scheduler took the core
        note += f", {run.meta['app_context_switches_per_request']['involuntary']:.1f} preemptions/request"
    return note


def _gc_note(measured, simulated) -> str:
    """The full (generation-2) collections in the measured window on both sides: the app's GC log
    times each one; the model draws them at the calibrated rate, each pause growing with the
    requests in flight."""
    logged = measured.meta.get("app_gc") or {}
    if "full" not in logged or not (logged["gen2"][0] or simulated.meta["gc_collections"][1]):
        return ""
    pauses = [f"{p:.0f}" for t, p, n in full_collections(measured) if t >= 0 and n is not None]  # the window's
    return (f", full GCs measured {len(pauses)}" + (f" ({', '.join(pauses)} ms)" if pauses else "")
            + f", simulated {simulated.meta['gc_collections'][1] / simulated.meta.get('replications', 1):.1f} a run")


def _pool_note(measured, simulated) -> str:
    """The pools' churn on both sides: DB connections opened per request (the apps log each open and
    how long it took, lab_apps.db.log_pool; the model counts its own, model.CONNECTION_COST)."""
    pool = measured.meta.get("app_pool")
    if not pool or not pool["requests"] or not (pool["opened"] or simulated.meta["db_connections_opened"]):
        return ""
    took = f" ({pool['open_ms_mean']:.1f} ms each)" if pool["open_ms_mean"] is not None else ""
    return (f", DB connections opened measured {pool['opened'] / pool['requests']:.3f}/request{took}, "
            f"simulated {simulated.meta['db_connections_opened'] / max(1, simulated.meta['requests_total']):.3f}")


def _preemption_note(simulated) -> str:
    """The model's preemptions per request, beside the app's involuntary context switches
    (simulator.cpu: a burst sent back to wait for the core)."""
    n = simulated.meta.get("requests_total") or 0
    return f", simulated {simulated.meta['api_cpu_preemptions'] / n:.1f}/request" if n else ""


def _errors(sim, measured) -> tuple[float, float]:
    return ((sim.p50_ms - measured.summary.p50_ms) / measured.summary.p50_ms,
            (sim.p95_ms - measured.summary.p95_ms) / measured.summary.p95_ms)


def _speed_note(reference, run) -> str:
    """How fast the host ran Python in ``run`` against the ``reference`` run (the apps' X-Lab-Speed)."""
    change = speed_change(run, reference)
    return f"host speed {change:+.0%}" if change is not None else "host speed n/a"


def run_case(file: str, save_to: Path | None = None) -> tuple[list, list]:
    """(the calibrated prediction's figures, the same shares simulated with each run's own CPU per
    request): each a list of (name, signed error, target, met)."""
    scenario = Scenario.load(ROOT / "datasets" / "scenarios" / file).with_knobs(duration_s=DURATION_S,
                                                                               warmup_s=WARMUP_S)
    app_cpus, load_cpus = split_cpus()
    kw = {"app_cpus": app_cpus, "load_cpus": load_cpus, "progress": None}
    fitted, low, mid = calibration_runs(scenario, **kw)

    def keep(run, name: str) -> None:
        if save_to:
            run.save(save_to / file.split(".")[0] / name)

    keep(low, "calibration_low")
    keep(mid, "calibration_cpu")
    capacity = predict(fitted.with_knobs(rate_rps=1.0)).capacity_rps
    s = scenario.server
    print(f"\n{file}: {s.model} x {s.workers}, app CPUs {app_cpus}, generator CPUs {load_cpus}; "
          f"calibrated capacity {capacity:.0f} req/s")
    for run in (low, mid):
        print(f"  calibration at {run.scenario.workload.rate_rps:g} req/s: {_cpu_note(run)}, "
              f"{_speed_note(mid, run)}")
    for line in changes(scenario, fitted):
        print(f"  {line}")
    print(f"  {'rate':>7} {'meas p50':>9} {'sim p50':>8} {'err':>6}   {'meas p95':>9} {'sim p95':>8} {'err':>6}"
          f"   {'given run CPU':>13}")
    rows, own = [], []
    for share in SHARES:
        rate = round(share * capacity, 1)
        length = {"duration_s": LONG_DURATION_S} if share >= LONG_FROM_SHARE else {}
        m = measure(scenario.with_knobs(rate_rps=rate, **length), **kw)
        keep(m, f"share_{share:.2f}")
        simulated = replicate(fitted.with_knobs(rate_rps=rate, **length), replications=MODEL_RUNS, allow_overcommit=True)
        sim = simulated.summary
        e50, e95 = _errors(sim, m)
        o50, o95 = _errors(replicate(given_run_cpu(fitted, m), replications=MODEL_RUNS, allow_overcommit=True).summary, m)
        flag = "  UNRELIABLE: " + "; ".join(m.meta["unreliable"]) if m.meta["unreliable"] else ""
        print(f"  {rate:7.1f} {m.summary.p50_ms:9.2f} {sim.p50_ms:8.2f} {e50:+6.0%}   "
              f"{m.summary.p95_ms:9.2f} {sim.p95_ms:8.2f} {e95:+6.0%}   {o50:+6.0%} {o95:+6.0%}  "
              f"{_cpu_note(m)}{_preemption_note(simulated)}, {_speed_note(mid, m)}{_gc_note(m, simulated)}"
              f"{_pool_note(m, simulated)}{flag}")
        rows.append((f"{file} p50 @{share:.0%}", e50, 0.10, abs(e50) <= 0.10))
        rows.append((f"{file} p95 @{share:.0%}", e95, 0.20, abs(e95) <= 0.20))
        own.append((f"{file} p50 @{share:.0%}", o50, 0.10, abs(o50) <= 0.10))
        own.append((f"{file} p95 @{share:.0%}", o95, 0.20, abs(o95) <= 0.20))
    over = round(1.3 * capacity, 1)
    m = measure(scenario.with_knobs(rate_rps=over, duration_s=LONG_DURATION_S), **kw)
    keep(m, "saturation")
    simulated = replicate(fitted.with_knobs(rate_rps=over, duration_s=LONG_DURATION_S), replications=MODEL_RUNS,
                          allow_overcommit=True)
    sim = simulated.summary
    e = (sim.throughput_rps - m.summary.throughput_rps) / m.summary.throughput_rps
    print(f"  saturation at {over:g} req/s offered: measured {m.summary.throughput_rps:.1f}, simulated "
          f"{sim.throughput_rps:.1f} req/s ({e:+.0%}); {_cpu_note(m)}{_preemption_note(simulated)}, "
          f"{_speed_note(mid, m)}")
    rows.append((f"{file} saturation", e, 0.10, abs(e) <= 0.10))
    return rows, own


def _medians(runs: list[list], label: str) -> list[tuple[str, float, float, bool]]:
    """Each figure's median error over the repeats, against its target, printed with its range."""
    summary = []
    for j, (name, _, target, _) in enumerate(runs[0]):
        errors = np.array([rows[j][1] for rows in runs])
        median = float(np.median(errors))
        summary.append((name, median, target, abs(median) <= target))
        if len(runs) > 1:
            print(f"  {name:<45} median {median:+7.1%}  range {errors.min():+.0%} to {errors.max():+.0%}  "
                  f"met in {sum(r[j][3] for r in runs)} of {len(runs)}")
    print(f"\n{label}, median over {len(runs)} repeat(s): {sum(r[3] for r in summary)} of {len(summary)} "
          f"figures within target; single repeats met {', '.join(str(sum(r[3] for r in rows)) for rows in runs)}\n")
    return summary


def main(repeat: int = 1, save_runs: str | None = None) -> list[tuple[str, float, float, bool]]:
    """Each figure's median error over ``repeat`` runs of the benchmark, against its target.

    Also printed: the same shares simulated with each run's own CPU per request
    (``lab_apps.measure.given_run_cpu``), which takes the host's drift between runs out of the error."""
    runs, owns = [], []
    for i in range(repeat):
        if repeat > 1:
            print(f"\n-- repeat {i + 1} of {repeat} --")
        save_to = Path(save_runs) / f"repeat_{i + 1}" if save_runs else None
        rows, own = [], []
        for file, _ in CASES:
            predicted, given = run_case(file, save_to)
            rows += predicted
            own += given
        print(f"\nfidelity: {sum(r[3] for r in rows)} of {len(rows)} figures within target "
              f"({sum(r[3] for r in own)} of {len(own)} shares with each run's own CPU per request)")
        runs.append(rows)
        owns.append(own)
    print("\nWith each run's own CPU per request (the host's drift taken out):")
    _medians(owns, "the model given each run's CPU")
    print("The prediction from the calibration alone:")
    return _medians(runs, "fidelity")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="run the benchmark this many times (median errors)")
    parser.add_argument("--save-runs", metavar="DIR", help="keep every measured run in DIR")
    args = parser.parse_args()
    for name, err, target, ok in main(args.repeat, args.save_runs):
        print(f"  {name:<45} {err:+7.1%}  target +-{target:.0%}  {'met' if ok else 'MISSED'}")
    sys.exit(0)
