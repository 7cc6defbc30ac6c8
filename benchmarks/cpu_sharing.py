"""CPU sharing: how this host's scheduler shares one core among worker processes, against the model.

Flask under gunicorn is a few processes on the app's cores, each cycling through CPU and waits.
This benchmark strips that to its bones, with no framework, socket or database in the way: K
processes pinned to one CPU, each repeating [burn A ms of CPU, sleep Z ms, burn B ms], where the
burn is the apps' own (``lab_apps.cpu_work.burn``) and the sleep stands for the database's wait.
Optionally each CPU phase is cut by short sleeps (``--cuts``), as a worker's is by socket reads
and writes. It reports, for the host:

* cycles a second, and the core's busy share (``/proc/stat``);
* how many of the K were runnable, sampled every 0.5 ms from another CPU: a core idle while
  work waits shows as time with none runnable, and processes in lockstep as time with all K;
* the wall time of the A-ms burn (its CPU phase stretched by the others');

and beside them the same closed cycle, cuts included, on the model's CPU as ``simulator.model``
shares a core among worker processes: "fair" (``simulator.cpu.FairShare`` with the model's slice,
tick and lag: the workers fall into step) and "round-robin" (``TimeSliced``: turns in 1.4-ms
slices, out of step), the two ways of ``Hardware.api_cpu_sharing`` that calibration chooses between,
and under processor sharing (the machine-repairman queue, exact for any distribution of the CPU
by the BCMP theorem). The ratio host / model is the model's error on the bare scheduler: the
part of Flask's saturation it must get right before anything on top of it.

    python benchmarks/cpu_sharing.py [--seconds 5] [--cpu N]
"""

from __future__ import annotations

import argparse
import collections
import math
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import simpy
from pinning import pinned

from lab_apps import cpu_work
from simulator.model import api_cpu

# (processes, A, Z, B, cuts): the reference recipe's Flask x 4 (2 ms of CPU in the handler, a
# 5-ms query wait, about 1.4 ms of framework around them), cut or not; one process as the
# control (no sharing at all); eight, past what the waits can hide (the core never idles); and
# 2.4 / 5 / 0.9, a cycle the host locks into step harder than the model does (2026-12-05: 236
# cycles/s and all four runnable 61% of the time, against the model's 292).
CASES = ((1, 2.7, 5.0, 0.7, 0), (4, 2.7, 5.0, 0.7, 0), (4, 2.7, 5.0, 0.7, 2), (8, 2.7, 5.0, 0.7, 0),
         (4, 2.4, 5.0, 0.9, 0))
CUT_MS = 0.1  # each cut: a sleep this long, the wait for a socket's data that is nearly there
SLEEP_OVERSHOOT_MS = 0.06  # time.sleep() returns this late on an idle core here (timer slack and wake-up)


def _cycle(pieces: list[tuple[str, float]], cpu: int, until: float, out) -> None:
    os.sched_setaffinity(0, {cpu})
    cpu_work.burn(1.0)  # the first burn calibrates its chunk size
    cycles, walls = 0, []
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        for kind, ms in pieces:
            if kind == "burn":
                cpu_work.burn(ms)
            else:
                if ms > CUT_MS:  # the long wait: phase A is over
                    walls.append((time.perf_counter() - t0) * 1000)
                time.sleep(ms / 1000)
        cycles += 1
    out.put((cycles, walls))


def _busy(cpu: int) -> tuple[int, int]:
    """(busy, total) jiffies of one CPU so far."""
    for line in Path("/proc/stat").read_text().splitlines():
        f = line.split()
        if f[0] == f"cpu{cpu}":
            ticks = [int(x) for x in f[1:9]]
            idle = ticks[3] + ticks[4]
            return sum(ticks) - idle, sum(ticks)
    raise RuntimeError(f"cpu{cpu} is not in /proc/stat")


def _pieces(a: float, z: float, b: float, cuts: int) -> list[tuple[str, float]]:
    """One cycle: A, the wait, B; with cuts, A is cut in cuts + 1 parts by short sleeps, B in two."""
    if not cuts:
        return [("burn", a), ("sleep", z), ("burn", b)]
    head = [("burn", a / (cuts + 1))]
    for _ in range(cuts):
        head += [("sleep", CUT_MS), ("burn", a / (cuts + 1))]
    return head + [("sleep", z), ("burn", b / 2), ("sleep", CUT_MS), ("burn", b / 2)]


def host(k: int, a: float, z: float, b: float, cuts: int, cpu: int, seconds: float, sampler_cpu: int | None) -> dict:
    warm = 1.0
    until = time.perf_counter() + warm + seconds
    out = mp.Queue()
    procs = [mp.Process(target=_cycle, args=(_pieces(a, z, b, cuts), cpu, until, out)) for _ in range(k)]
    for p in procs:
        p.start()
    runnable: collections.Counter = collections.Counter()
    with pinned(None if sampler_cpu is None else [sampler_cpu]):
        time.sleep(warm)
        b0 = _busy(cpu)
        end = time.perf_counter() + seconds * 0.9
        while time.perf_counter() < end:
            n = 0
            for p in procs:
                try:
                    stat = Path(f"/proc/{p.pid}/stat").read_text()
                except OSError:
                    continue
                n += stat[stat.rindex(")") + 2] == "R"
            runnable[n] += 1
            time.sleep(0.0005)
        b1 = _busy(cpu)
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    total = sum(runnable.values())
    walls = np.concatenate([w for _, w in results]) if results else np.array([])
    return {"cycles_per_s": sum(c for c, _ in results) / (warm + seconds),
            "busy": (b1[0] - b0[0]) / max(1, b1[1] - b0[1]),
            "runnable": {n: runnable[n] / total for n in range(k + 1)},
            "burn_wall_p50": float(np.median(walls)) if walls.size else math.nan}


def model(k: int, a: float, z: float, b: float, cuts: int, seconds: float = 30.0, sharing: str = "fair") -> dict:
    """The same closed cycle, cuts included, on the model's CPU as ``simulator.model`` shares an API
    core among worker processes: ``sharing`` "fair" (``simulator.cpu.FairShare`` with the model's
    slice, tick and lag) or "round-robin" (``TimeSliced`` in the model's slices); each burn a CPU
    job of its process and each sleep a wait; one second of warm-up."""
    env = simpy.Environment()
    cpu = api_cpu(env, 1, sharing)
    warm = 1.0
    cycles, walls, runnable = [0], [], collections.Counter()

    def worker(index: int, offset: float):
        yield env.timeout(offset)
        while True:
            t0 = env.now
            for kind, ms in _pieces(a, z, b, cuts):
                if kind == "burn":
                    yield cpu.run(ms / 1000, index)
                else:
                    if ms > CUT_MS and env.now > warm:
                        walls.append((env.now - t0) * 1000)
                    yield env.timeout((ms + SLEEP_OVERSHOOT_MS) / 1000)
            if env.now > warm:
                cycles[0] += 1

    def sampler():
        yield env.timeout(warm)
        while True:
            runnable[cpu.jobs] += 1
            yield env.timeout(0.0005)

    for i in range(k):
        env.process(worker(i, i * 0.0001))
    env.process(sampler())
    env.run(until=warm)
    busy0 = cpu.busy_area
    env.run(until=warm + seconds)
    total = sum(runnable.values())
    return {"cycles_per_s": cycles[0] / seconds, "busy": (cpu.busy_area - busy0) / seconds,
            "runnable": {n: runnable[n] / total for n in range(k + 1)},
            "burn_wall_p50": float(np.median(walls)) if walls else math.nan}


def processor_sharing(k: int, a: float, z: float, b: float, cuts: int) -> float:
    """Cycles a second of K processes sharing one core equally (the machine-repairman queue: S of
    CPU, then Z of wait); by the BCMP theorem it holds for any distribution of S."""
    s, wait = a + b, z + ((cuts + 1) * CUT_MS if cuts else 0.0)
    terms = [math.factorial(k) / math.factorial(k - n) * (s / wait) ** n for n in range(k + 1)]
    return (1 - 1 / sum(terms)) * 1000 / s


def main(seconds: float = 5.0, cpu: int | None = None) -> list[tuple]:
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1] if cpu is None else cpu
    sampler = next((c for c in cpus if c != cpu), None)
    if sampler is None:
        print("one CPU only: the sampler shares it with the processes it samples, and slows them")
    print(f"{len(cpus)} CPUs; the processes on CPU {cpu}, the sampler on CPU {sampler}; {seconds:g} s a case")
    print(f"  {'K':>2} {'cycle (ms)':<22} {'host/s':>7} {'busy':>5} {'model/s':>8} {'busy':>5} {'RR/s':>6} {'busy':>5}"
          f" {'PS/s':>6}  {'host/model':>10}  {'A wall p50 host, model':>23}  runnable (share of time with n): "
          "host; model")
    rows = []
    for k, a, z, b, cuts in CASES:
        h = host(k, a, z, b, cuts, cpu, seconds, sampler)
        m = model(k, a, z, b, cuts)
        rr = model(k, a, z, b, cuts, sharing="round-robin")
        ps = processor_sharing(k, a, z, b, cuts)
        label = f"{a:g} / {z:g} / {b:g}" + (f", {cuts} cuts" if cuts else "")
        ratio = h["cycles_per_s"] / m["cycles_per_s"]
        share = (" ".join(f"{n}:{v:.0%}" for n, v in h["runnable"].items()) + "; model "
                 + " ".join(f"{n}:{v:.0%}" for n, v in m["runnable"].items()))
        print(f"  {k:>2} {label:<22} {h['cycles_per_s']:7.1f} {h['busy']:5.0%} {m['cycles_per_s']:8.1f} "
              f"{m['busy']:5.0%} {rr['cycles_per_s']:6.1f} {rr['busy']:5.0%} {ps:6.1f}  {ratio:10.2f}  {h['burn_wall_p50']:10.2f} {m['burn_wall_p50']:7.2f} ms"
              f"   {share}")
        rows.append((k, label, h, m, ps, rr))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds a case (after 1 s warm-up)")
    parser.add_argument("--cpu", type=int, help="the CPU the processes share (default: the last one allowed)")
    args = parser.parse_args()
    main(args.seconds, args.cpu)
