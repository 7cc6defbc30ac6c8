"""Cold core: how much more CPU the same work takes after the core has idled, by how long it idled.

The apps' CPU per request falls from low load to about a third of capacity and is flat above it.
The model charges that as a wake-up cost (``Hardware.wake_cpu_ms``, which calibration fits) paid
by a burst that finds its core idle, and only after a long idle (``simulator.model.WAKE_COLD_S``).
This benchmark measures the shape behind that constant: pinned to one CPU, it sleeps for a gap,
then does a fixed piece of work (the apps' spin loop and a pass over an 8 MB working set, fixed
in iterations, not in time) and times the CPU it took, against the same work done straight after
other work. On a virtual machine the host runs other work while the guest's core idles; the
longer the idle, the colder the caches the work comes back to.

    python benchmarks/cold_core.py [--cpu N]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from pinning import pinned

from lab_apps import cpu_work
from simulator.model import WAKE_COLD_S

GAPS_MS = (0.0, 0.1, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 15.0, 20.0, 30.0, 50.0)
WORKING_SET = 8 << 20
SPIN = 1500


def main(cpu: int | None = None, trials: int = 60) -> dict[float, float]:
    """Extra CPU ms of the fixed work after each idle gap (median over trials), against none."""
    cpu = max(os.sched_getaffinity(0)) if cpu is None else cpu
    with pinned([cpu]):
        return _measure(cpu, trials)


def _measure(cpu: int, trials: int) -> dict[float, float]:
    memory = bytearray(WORKING_SET)

    def work() -> None:
        for i in range(0, WORKING_SET, 4096):
            memory[i] = (memory[i] + 1) & 255
        cpu_work._spin(SPIN)

    for _ in range(200):  # warm
        work()
    clock = time.thread_time
    medians = {}
    for gap in GAPS_MS:
        took = []
        for _ in range(trials):
            if gap:
                time.sleep(gap / 1000)
            else:
                work()
            c0 = clock()
            work()
            took.append((clock() - c0) * 1000)
        medians[gap] = float(np.median(took))
    warm = medians[0.0]
    print(f"CPU {cpu}: fixed work {warm:.3f} ms of CPU straight after other work; the model's ramp "
          f"WAKE_COLD_S = {WAKE_COLD_S[0] * 1000:g}-{WAKE_COLD_S[1] * 1000:g} ms")
    print(f"  {'idle before (ms)':>16} {'CPU (ms)':>9} {'extra (ms)':>11} {'share of the 30-50 ms extra':>28}")
    full = np.mean([medians[g] - warm for g in GAPS_MS if g >= 30]) or float("nan")
    for gap in GAPS_MS:
        extra = medians[gap] - warm
        print(f"  {gap:16g} {medians[gap]:9.3f} {extra:+11.3f} {extra / full:28.0%}")
    return {g: medians[g] - warm for g in GAPS_MS}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu", type=int, help="the CPU to run on (default: the last one allowed)")
    parser.add_argument("--trials", type=int, default=60, help="trials per idle gap")
    args = parser.parse_args()
    main(args.cpu, args.trials)
