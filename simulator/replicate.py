"""The model's expected answer for one experiment: several independent runs, pooled.

One run of the model is one draw, as one measured run is: over a 12-second
window at 85% of a core, the p95 of the reference async scenario moves by a
coefficient of variation of 16-19% from seed to seed, and the p50 by 8-9%
(1-2% at 17%). Set beside a measured run, a single draw adds its own noise to
the comparison's error, as large as the targets the lab holds it to (p50
within 10%, p95 within 20%). The prediction to compare with a measurement is
the model's distribution for a run of that length, so ``replicate`` runs the
same scenario with consecutive seeds and pools their requests.

Each replication keeps the scenario's duration and warm-up: what happens in a
short run (a full collection that comes or not, a process that starts just
past one) stays as it is in the experiment the prediction is for. A longer
single run would average those away.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .model import simulate
from .result import Result, summarise
from .scenario import Scenario

__all__ = ["replicate", "REPLICATIONS"]

# Four: the standard error of a pooled p50 is half of one run's (1/sqrt(4)). Eight made it a
# third, but doubled the replay of notebook 03's two recorded comparisons (60 to 125 s on a
# slow host), which a learner waits for; the fidelity benchmark pools 8.
REPLICATIONS = 4

# meta figures counted over a whole run: the pool sums them, so per-request ratios stay right
_SUMMED = ("requests_total", "db_connections_opened", "db_connections_closed", "db_connection_cpu_ms",
           "api_cpu_wakes", "api_cpu_preemptions")


def replicate(scenario: Scenario, *, replications: int = REPLICATIONS, seed: int = 0,
              allow_overcommit: bool = False) -> Result:
    """Run ``scenario`` with seeds ``seed``, ``seed + 1``, ... (``replications`` of them) and pool them.

    The Result's rows are every replication's rows together, and its latency percentiles,
    counts and error rate are over that pool; its throughput and utilisation are the
    replications' means. ``meta`` sums what each run counted (requests, wakes, connections
    opened, collections), keeps ``replications`` and each one's own figures
    (``replica_summaries``: seed, p50, p95, p99, throughput) to show the model's spread, and
    the first run's time series stand for the queues over time.
    """
    if isinstance(replications, bool) or not isinstance(replications, (int, np.integer)) or replications < 1:
        raise ValueError(f"replications must be a whole number >= 1, got {replications!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    runs = [simulate(scenario, seed=int(seed) + i, allow_overcommit=allow_overcommit) for i in range(replications)]
    if replications == 1:
        return runs[0]
    first = runs[0]
    rows = {k: np.concatenate([r.rows[k] for r in runs]) for k in first.rows}
    w = scenario.workload
    pooled = summarise(rows, window_s=(w.warmup_s, w.warmup_s + w.duration_s))
    summary = dataclasses.replace(
        pooled, throughput_rps=float(np.mean([r.summary.throughput_rps for r in runs])),
        utilisation={k: float(np.mean([r.summary.utilisation[k] for r in runs])) for k in first.summary.utilisation})
    meta = dict(first.meta)
    for key in _SUMMED:
        meta[key] = sum(r.meta[key] for r in runs)
    meta["gc_collections"] = [sum(c) for c in zip(*(r.meta["gc_collections"] for r in runs), strict=True)]
    meta["mean_jobs"] = {k: float(np.mean([r.meta["mean_jobs"][k] for r in runs])) for k in first.meta["mean_jobs"]}
    meta["replications"] = replications
    meta["replica_summaries"] = [{"seed": r.seed, "p50_ms": r.summary.p50_ms, "p95_ms": r.summary.p95_ms,
                                  "p99_ms": r.summary.p99_ms, "throughput_rps": r.summary.throughput_rps}
                                 for r in runs]
    return Result(kind="simulated", scenario=first.scenario, seed=first.seed, rows=rows, summary=summary,
                  timeseries=first.timeseries, meta=meta)
