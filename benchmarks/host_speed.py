"""Host speed: how steady is this machine's CPU, run to run and second to second?

The lab's apps burn their recipe's CPU by time (``lab_apps.cpu_work.burn``), but
everything else they run (the framework, the driver, SQLAlchemy) is a fixed
amount of work, which takes longer when the core is slow. On a shared virtual
machine the core's speed changes under the lab's feet, with no process of the
lab's to blame. This benchmark spins the same loop the apps' speedometer uses
(``X-Lab-Speed``), pinned to one CPU, and reports its speed every quarter
second: the spread, how long a speed lasts, and how much the mean of one
measured run's length (15 s, the fidelity benchmark's) differs from the next
one's: the drift a calibration cannot see coming.

    python benchmarks/host_speed.py [--seconds 60] [--cpu N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from pinning import pinned

from lab_apps import cpu_work

SAMPLE_S = 0.25
RUN_S = 15.0  # a fidelity run: 3 s warm-up and 12 s measured


def speeds(seconds: float, chunk: int = 2000) -> np.ndarray:
    """The spin loop's iterations per CPU millisecond, one figure per SAMPLE_S of wall time."""
    out = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        c0, w0, n = time.thread_time(), time.perf_counter(), 0
        while time.perf_counter() - w0 < SAMPLE_S:
            cpu_work._spin(chunk)
            n += chunk
        out.append(n / ((time.thread_time() - c0) * 1000))
    return np.array(out)


def correlation_time_s(x: np.ndarray) -> float:
    """The lag at which the speed's autocorrelation first falls below 1/e: how long a speed lasts."""
    x = x - x.mean()
    if not x.any():
        return float("inf")
    full = np.correlate(x, x, mode="full")[x.size - 1:] / (x.var() * x.size)
    below = np.nonzero(full < 1 / np.e)[0]
    return float(below[0] * SAMPLE_S) if below.size else float("inf")


def main(seconds: float = 60.0, cpu: int | None = None) -> dict:
    with pinned(None if cpu is None else [cpu]):
        cpu_work.calibrate()
        x = speeds(seconds)
    per_run = int(RUN_S / SAMPLE_S)
    runs = np.array([x[i:i + per_run].mean() for i in range(0, x.size - per_run + 1, per_run)])
    steps = np.abs(np.diff(runs)) / runs[:-1] if runs.size > 1 else np.array([])
    figures = {"samples": int(x.size), "median": float(np.median(x)), "p10": float(np.percentile(x, 10)),
               "p90": float(np.percentile(x, 90)), "min": float(x.min()), "max": float(x.max()),
               "cv": float(x.std() / x.mean()), "correlation_time_s": correlation_time_s(x),
               "run_means": runs.tolist(), "run_to_run_change": steps.tolist()}
    where = f"CPU {cpu}" if cpu is not None else f"CPUs {sorted(os.sched_getaffinity(0))}"
    print(f"host speed on {where}, {seconds:g} s, the spin loop's iterations per CPU ms every {SAMPLE_S} s:")
    print(f"  median {figures['median']:.0f}, p10 {figures['p10']:.0f}, p90 {figures['p90']:.0f}, "
          f"min {figures['min']:.0f}, max {figures['max']:.0f}: max/min {figures['max'] / figures['min']:.2f}, "
          f"coefficient of variation {figures['cv']:.1%}")
    print(f"  a speed lasts about {figures['correlation_time_s']:.2f} s (autocorrelation below 1/e)")
    if steps.size:
        print(f"  {runs.size} consecutive {RUN_S:g}-second means: {', '.join(f'{r:.0f}' for r in runs)}; "
              f"from one to the next: median {np.median(steps):.0%}, max {steps.max():.0%} change")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU (default: the last one, the app's)")
    args = parser.parse_args()
    main(args.seconds, args.cpu if args.cpu is not None else max(os.sched_getaffinity(0)))
