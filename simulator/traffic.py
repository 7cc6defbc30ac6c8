"""The traffic a scenario sends: when requests leave, to which endpoint, for which key.

Shared by the model and the load generator, so a simulated and a measured
run of one scenario and one seed send the same schedule: the same arrival
times, the same endpoint mix, the same Zipf-popular keys.
"""

from __future__ import annotations

import math

import numpy as np

from .backends import ZipfKeys
from .scenario import Workload

__all__ = ["arrival_times", "EndpointMix", "streams", "ZipfKeys"]


def streams(seed: int, n: int) -> list[np.random.Generator]:
    """``n`` independent generators from one seed, always in the same order."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def arrival_times(workload: Workload, rng: np.random.Generator) -> list[float]:
    """Open-loop send times in seconds over warm-up plus duration: Poisson or constant."""
    horizon = workload.warmup_s + workload.duration_s
    rate = workload.rate_rps
    if workload.arrival == "constant":
        return (np.arange(int(math.ceil(horizon * rate))) / rate).tolist()
    # Poisson: exponential gaps; draw a little more than needed, then cut
    n = int(horizon * rate + 6 * math.sqrt(horizon * rate) + 10)
    times = np.cumsum(rng.exponential(1.0 / rate, n))
    while times[-1] < horizon:
        times = np.concatenate([times, np.cumsum(rng.exponential(1.0 / rate, n)) + times[-1]])
    return times[times < horizon].tolist()


class EndpointMix:
    """Draws endpoint indices by the workload's weights."""

    def __init__(self, workload: Workload, rng: np.random.Generator) -> None:
        weights = np.array([e.weight for e in workload.endpoints])
        self.cdf = np.cumsum(weights / weights.sum())
        self.rng = rng

    def draw(self, n: int) -> list[int]:
        if len(self.cdf) == 1:
            return [0] * n
        return np.searchsorted(self.cdf, self.rng.random(n), side="right").tolist()
