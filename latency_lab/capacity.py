"""Notebook 08's planning: the most each configuration sustains under a p99 target, and the cheapest
fleet of them that carries a target rate.

A configuration is a server model and worker count on one API server of
the scenario's hardware. Its sustainable rate is the highest open-loop rate
whose simulated p99 stays under the target with (almost) no errors
(``curves.max_rate_under``). A fleet is N such servers behind a load
balancer that splits the traffic evenly; its cost is N servers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simulator.scenario import Scenario

from .curves import max_rate_under


@dataclass(frozen=True)
class Option:
    label: str
    model: str
    workers: int
    threads: int
    sustainable_rps: float  # per server, under the p99 target
    memory_mb: float  # per server
    db_connections: int  # per server
    fits: bool  # memory and DB connections within the hardware
    servers: int = 0  # to carry the target rate; 0 when it cannot
    problems: tuple[str, ...] = ()

    def row(self) -> dict[str, object]:
        return {"configuration": self.label, "req/s per server": self.sustainable_rps,
                "memory MB": self.memory_mb, "DB conns": self.db_connections,
                "servers": self.servers or "-", "fits": "yes" if self.fits else "; ".join(self.problems)}


DEFAULT_OPTIONS = (("sync", 5, 1), ("sync", 9, 1), ("sync", 17, 1), ("threads", 5, 4), ("threads", 5, 8),
                   ("async", 1, 1), ("async", 2, 1), ("threadpool", 2, 1))


def options(scenario: Scenario, p99_ms: float, target_rps: float, configurations=DEFAULT_OPTIONS, *,
            seed: int = 0) -> list[Option]:
    """Every configuration, its sustainable rate per server, and the servers it needs for ``target_rps``."""
    if not (isinstance(target_rps, (int, float)) and target_rps > 0 and math.isfinite(target_rps)):
        raise ValueError(f"target_rps must be a positive number of req/s, got {target_rps!r}")
    out = []
    for model, workers, threads in configurations:
        sc = scenario.with_knobs(model=model, workers=workers, threads=threads if model == "threads" else 1)
        label = f"{model} x {workers}" + (f" x {threads} threads" if model == "threads" else "")
        problems = tuple(sc.problems())
        rate = 0.0 if problems else max_rate_under(sc, p99_ms, seed=seed)
        servers = math.ceil(target_rps / rate) if rate > 0 else 0
        out.append(Option(label, model, workers, threads, rate, sc.memory_mb(), sc.db_connections(),
                          not problems, servers, problems))
    return out


def cheapest(found: list[Option]) -> Option | None:
    """The option needing the fewest servers; ties go to the least memory."""
    usable = [o for o in found if o.fits and o.servers]
    return min(usable, key=lambda o: (o.servers, o.memory_mb)) if usable else None
