"""Load generator capacity: the highest open-loop rate it sustains with lag p99 under 2 ms,
beside wrk (Debian's package) on the same endpoint in the same run.

The endpoint is trivial: the NoSQL capacity service (uvicorn + Starlette) answering
404 for /indicators/1, pinned to its own CPU, the generator and wrk to another.
wrk is closed-loop (fixed connections, as fast as it can): its figure is the most
this endpoint serves, so the ratio says how much of that an open-loop schedule
reaches before the generator itself falls behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from lab_apps.launcher import nosql_service
from lab_apps.loadgen import load
from lab_apps.measure import split_cpus
from simulator import Scenario

RATES = (500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000, 12000, 16000)  # until the lag passes 2 ms
MAX_LAG_P99_MS = 2.0
SECONDS = 4.0


def main() -> list[tuple[str, float, float, bool]]:
    app_cpus, load_cpus = split_cpus()
    with nosql_service(Scenario()) as url:
        port = url.rsplit(":", 1)[1]
        if app_cpus:
            for pid in subprocess.run(["pgrep", "-f", f"--port {port}"], capture_output=True,
                                      text=True).stdout.split():
                os.sched_setaffinity(int(pid), app_cpus)
        best = 0
        for rate in RATES:
            scenario = Scenario().with_knobs(arrival="constant", rate_rps=float(rate), duration_s=SECONDS,
                                             warmup_s=0.5)
            r = load(url, scenario, cpus=load_cpus, progress=None)
            lag = r.meta["generator"]["lag"]["p99_ms"]
            print(f"open loop at {rate:5d} req/s: lag p99 {lag:6.2f} ms, generator CPU "
                  f"{r.meta['generator']['cpu_share']:.0%}, answered {r.summary.requests}")
            if lag >= MAX_LAG_P99_MS:
                break
            best = rate
        rows = [("generator max rate", float(best), 0.0, best > 0)]
        wrk = shutil.which("wrk")
        if wrk is None:
            print("wrk is not installed (apt-get install wrk): no side-by-side figure")
            return rows
        cmd = [wrk, "-t1", "-c32", f"-d{int(SECONDS)}s", f"{url}/indicators/1"]
        if load_cpus:
            cmd = ["taskset", "-c", ",".join(map(str, load_cpus)), *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
        wrk_rate = float(re.search(r"Requests/sec:\s+([0-9.]+)", out).group(1))
        print(f"wrk, 1 thread, 32 connections, closed loop: {wrk_rate:,.0f} req/s")
        print(f"generator / wrk: {best / wrk_rate:.2f}")
        rows.append(("generator / wrk", best / wrk_rate, 0.0, True))
        return rows


if __name__ == "__main__":
    main()
