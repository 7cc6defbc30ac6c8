"""Latency-versus-load curves and the rates a configuration sustains.

The notebooks' workhorse: simulate a scenario at a grid of rates (the
model), lay the formulas beside it (``predict``), and find the highest rate
that keeps a latency target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simulator.analytic import predict
from simulator.model import simulate
from simulator.result import Result
from simulator.scenario import Scenario

from .modes import seconds

PERCENTILES = ("p50_ms", "p95_ms", "p99_ms")


def short(scenario: Scenario, full_s: float = 20.0, smoke_s: float = 4.0) -> Scenario:
    """The scenario with a run length fit for a notebook (shorter in smoke mode)."""
    duration = seconds(full_s, smoke_s)
    return scenario.with_knobs(duration_s=duration, warmup_s=min(scenario.workload.warmup_s, duration / 4))


def capacity(scenario: Scenario) -> float:
    """The most the configuration can finish per second, from the formulas (req/s)."""
    return predict(scenario.with_knobs(rate_rps=1.0)).capacity_rps


def rate_grid(scenario: Scenario, points: int = 8, top: float = 0.95) -> list[float]:
    """``points`` rates from 10% to ``top`` of the predicted capacity."""
    cap = capacity(scenario)
    return [round(float(r), 1) for r in np.linspace(0.1, top, points) * cap]


@dataclass(frozen=True)
class Curve:
    """A configuration's latency at each offered rate, simulated and predicted."""

    label: str
    rates: np.ndarray
    throughput_rps: np.ndarray
    p50_ms: np.ndarray
    p95_ms: np.ndarray
    p99_ms: np.ndarray
    error_rate: np.ndarray
    predicted: dict[str, np.ndarray]  # p50_ms, p95_ms, p99_ms from predict(); inf past capacity
    capacity_rps: float
    bottleneck: str

    def at(self, rate: float) -> dict[str, float]:
        """The simulated figures at the grid rate nearest ``rate``."""
        i = int(np.argmin(np.abs(self.rates - rate)))
        return {"rate_rps": float(self.rates[i]), "throughput_rps": float(self.throughput_rps[i]),
                **{k: float(getattr(self, k)[i]) for k in PERCENTILES}, "error_rate": float(self.error_rate[i])}


def load_curve(scenario: Scenario, rates, *, label: str | None = None, seed: int = 0,
               full_s: float = 20.0, smoke_s: float = 4.0) -> Curve:
    """Simulate ``scenario`` at each rate in ``rates`` (req/s) and predict it too."""
    rates = np.asarray(list(rates), dtype=float)
    if rates.size == 0 or np.any(~np.isfinite(rates)) or np.any(rates <= 0):
        raise ValueError(f"rates must be positive numbers of req/s, got {rates.tolist()}")
    base = short(scenario, full_s, smoke_s)
    base.check()
    sims = [simulate(base.with_knobs(rate_rps=float(r)), seed=seed).summary for r in rates]
    preds = [predict(base.with_knobs(rate_rps=float(r))) for r in rates]
    s = scenario.server
    name = label or f"{s.model} x {s.workers}" + (f" x {s.threads} threads" if s.model == "threads" else "")
    first = predict(base.with_knobs(rate_rps=1.0))

    def col(key):
        return np.array([getattr(x, key) for x in sims], dtype=float)

    return Curve(label=name, rates=rates, throughput_rps=col("throughput_rps"), p50_ms=col("p50_ms"),
                 p95_ms=col("p95_ms"), p99_ms=col("p99_ms"), error_rate=col("error_rate"),
                 predicted={k: np.array([getattr(p, k) for p in preds], dtype=float) for k in PERCENTILES},
                 capacity_rps=first.capacity_rps, bottleneck=first.bottleneck)


def meets(scenario: Scenario, rate: float, p99_ms: float, *, seed: int = 0, max_error_rate: float = 0.001,
          full_s: float = 20.0, smoke_s: float = 4.0) -> bool:
    """Does the configuration serve ``rate`` with p99 under ``p99_ms`` and (almost) no errors?"""
    sc = short(scenario, full_s, smoke_s).with_knobs(rate_rps=float(rate))
    s = simulate(sc, seed=seed, allow_overcommit=True).summary
    return (s.p99_ms <= p99_ms and s.error_rate <= max_error_rate
            and s.throughput_rps >= 0.97 * rate)  # and it keeps up (no backlog growing in the window)


def max_rate_under(scenario: Scenario, p99_ms: float, *, seed: int = 0, tolerance: float = 0.03,
                   full_s: float = 20.0, smoke_s: float = 4.0) -> float:
    """The highest open-loop rate with simulated p99 under ``p99_ms`` (req/s; 0 when none).

    Bisection between 0 and the predicted capacity, to ``tolerance`` of it.
    """
    if not (isinstance(p99_ms, (int, float)) and p99_ms > 0 and math.isfinite(p99_ms)):
        raise ValueError(f"p99_ms must be a positive number of milliseconds, got {p99_ms!r}")
    hi = capacity(scenario)
    if not math.isfinite(hi):
        raise ValueError("the scenario has no finite capacity: nothing in its recipe takes time")
    lo = 0.0
    if meets(scenario, hi, p99_ms, seed=seed, full_s=full_s, smoke_s=smoke_s):
        return hi
    step = hi * tolerance
    while hi - lo > step:
        mid = (lo + hi) / 2
        if meets(scenario, mid, p99_ms, seed=seed, full_s=full_s, smoke_s=smoke_s):
            lo = mid
        else:
            hi = mid
    return lo


def answered_per_second(result: Result, bin_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(second, successful responses that arrived in it), over the whole run: the throughput's
    time course, which a window's average hides (a collapse and its recovery)."""
    rows = result.rows
    ok = (rows["error"] == 0) & (rows["status"] > 0) & (rows["status"] < 400)
    end = result.scenario.workload.warmup_s + result.scenario.workload.duration_s
    edges = np.arange(0.0, end + bin_s, bin_s)
    counts, _ = np.histogram(rows["end_s"][ok], bins=edges)
    return edges[:-1], counts / bin_s
