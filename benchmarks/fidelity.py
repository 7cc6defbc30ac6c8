"""Fidelity: the calibrated model against the real apps, on this machine.

For Flask `sync` with 4 workers and FastAPI `async` with 1 worker, on the
reference recipe (2 ms CPU, one query with a 5 ms wait and 0.5 ms DB CPU,
cache off, SQLite), with the app on its own CPU and the load generator on
another:
  1. calibrate (a low-load run for phase times, a moderate one for CPU);
  2. predict capacity with the calibrated model;
  3. measure and simulate at five rates up to 85% of that capacity;
  4. measure and simulate at 130% of it: saturation throughput.
Targets: p50 within 10%, p95 within 20%, saturation throughput within 10%.
Takes about 5 minutes.
"""

from __future__ import annotations

import sys
from pathlib import Path

from lab_apps.compare import CPU_SHARE, PHASES_SHARE
from lab_apps.measure import calibrate, changes, measure, split_cpus
from simulator import Scenario, predict, simulate

ROOT = Path(__file__).resolve().parents[1]
DURATION_S, WARMUP_S = 12.0, 3.0
SHARES = (0.17, 0.34, 0.51, 0.68, 0.85)
CASES = (("reference_flask_sync.toml", {}), ("reference_fastapi_async.toml", {}))


def run_case(file: str) -> list[tuple[str, float, float, bool]]:
    scenario = Scenario.load(ROOT / "datasets" / "scenarios" / file).with_knobs(duration_s=DURATION_S,
                                                                               warmup_s=WARMUP_S)
    app_cpus, load_cpus = split_cpus()
    kw = {"app_cpus": app_cpus, "load_cpus": load_cpus, "progress": None}
    guess = predict(scenario.with_knobs(api_cores=len(app_cpus or [0, 1]), rate_rps=1.0)).capacity_rps
    low = measure(scenario.with_knobs(rate_rps=max(5.0, PHASES_SHARE * guess)), **kw)
    mid = measure(scenario.with_knobs(rate_rps=CPU_SHARE * guess), **kw)
    fitted = calibrate(low, scenario, cpu_from=mid)
    capacity = predict(fitted.with_knobs(rate_rps=1.0)).capacity_rps
    s = scenario.server
    print(f"\n{file}: {s.model} x {s.workers}, app CPUs {app_cpus}, generator CPUs {load_cpus}; "
          f"calibrated capacity {capacity:.0f} req/s")
    for line in changes(scenario, fitted):
        print(f"  {line}")
    print(f"  {'rate':>7} {'meas p50':>9} {'sim p50':>8} {'err':>6}   {'meas p95':>9} {'sim p95':>8} {'err':>6}")
    rows = []
    for share in SHARES:
        rate = round(share * capacity, 1)
        m = measure(scenario.with_knobs(rate_rps=rate), **kw)
        sim = simulate(fitted.with_knobs(rate_rps=rate), seed=0, allow_overcommit=True).summary
        e50 = (sim.p50_ms - m.summary.p50_ms) / m.summary.p50_ms
        e95 = (sim.p95_ms - m.summary.p95_ms) / m.summary.p95_ms
        flag = "  UNRELIABLE: " + "; ".join(m.meta["unreliable"]) if m.meta["unreliable"] else ""
        print(f"  {rate:7.1f} {m.summary.p50_ms:9.2f} {sim.p50_ms:8.2f} {e50:+6.0%}   "
              f"{m.summary.p95_ms:9.2f} {sim.p95_ms:8.2f} {e95:+6.0%}{flag}")
        rows.append((f"{file} p50 @{share:.0%}", e50, 0.10, abs(e50) <= 0.10))
        rows.append((f"{file} p95 @{share:.0%}", e95, 0.20, abs(e95) <= 0.20))
    over = round(1.3 * capacity, 1)
    m = measure(scenario.with_knobs(rate_rps=over), **kw).summary
    sim = simulate(fitted.with_knobs(rate_rps=over), seed=0, allow_overcommit=True).summary
    e = (sim.throughput_rps - m.throughput_rps) / m.throughput_rps
    print(f"  saturation at {over:g} req/s offered: measured {m.throughput_rps:.1f}, simulated "
          f"{sim.throughput_rps:.1f} req/s ({e:+.0%})")
    rows.append((f"{file} saturation", e, 0.10, abs(e) <= 0.10))
    return rows


def main() -> list[tuple[str, float, float, bool]]:
    rows = []
    for file, _ in CASES:
        rows += run_case(file)
    met = sum(r[3] for r in rows)
    print(f"\nfidelity: {met} of {len(rows)} figures within target")
    return rows


if __name__ == "__main__":
    for name, err, target, ok in main():
        print(f"  {name:<45} {err:+7.1%}  target +-{target:.0%}  {'met' if ok else 'MISSED'}")
    sys.exit(0)
