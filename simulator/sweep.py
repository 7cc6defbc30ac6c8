"""Sweeps: one scenario, many values of one or more knobs, run in parallel.

The executor is pluggable. Anything with ``map(fn, items)`` works
(``concurrent.futures`` executors); a ``dask.distributed.Client`` is
recognised by its ``gather`` and runs grids larger than one machine. By
default points run on local processes, one per core.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from .model import simulate
from .result import Result, Summary
from .scenario import Scenario, resolve_knob

__all__ = ["sweep", "parse_sweep", "SweepPoint"]


@dataclass(frozen=True)
class SweepPoint:
    """One point of a sweep: the knobs it set, its seed, and what it gave."""

    knobs: dict[str, Any]
    seed: int
    summary: Summary
    result: Result | None = None  # the whole run, when keep_rows=True

    def as_row(self) -> dict[str, Any]:
        return {**self.knobs, "seed": self.seed, **{k: v for k, v in self.summary.to_dict().items()
                                                    if k != "utilisation"}}


def parse_sweep(spec: str) -> tuple[str, list[Any]]:
    """``"rate=10:200:10"`` -> ("rate_rps", [10, 20, ..., 200]); ``"workers=1,2,4"``; ``"model=sync,async"``."""
    if "=" not in spec:
        raise ValueError(f"a sweep is KNOB=START:STOP:STEP or KNOB=A,B,C; got {spec!r}")
    name, _, values = spec.partition("=")
    name, _section = resolve_knob(name.strip().replace("-", "_"))  # names the knobs when unknown
    probe = Scenario().knob(name)
    numeric = isinstance(probe, (int, float)) or hasattr(probe, "mean")
    whole = isinstance(probe, int) and not isinstance(probe, bool)
    if ":" in values:
        parts = values.split(":")
        if len(parts) != 3 or not numeric:
            raise ValueError(f"sweep {name}: a range is START:STOP:STEP of numbers; got {values!r}")
        try:
            start, stop, step = (float(p) for p in parts)
        except ValueError:
            raise ValueError(f"sweep {name}: START:STOP:STEP must be numbers; got {values!r}") from None
        if step <= 0 or stop < start:
            raise ValueError(f"sweep {name}: need STEP > 0 and STOP >= START; got {values!r}")
        count = int(round((stop - start) / step)) + 1
        points = [start + i * step for i in range(count) if start + i * step <= stop + 1e-9 * step]
    else:
        points = [v.strip() for v in values.split(",") if v.strip()]
        if not points:
            raise ValueError(f"sweep {name}: no values in {values!r}")
        if numeric:
            try:
                points = [float(v) for v in points]
            except ValueError:
                raise ValueError(f"sweep {name}: values must be numbers; got {values!r}") from None
    if whole:
        points = [int(p) for p in points]
    return name, points


def _run_point(args: tuple[Scenario, int, bool, bool]) -> tuple[Summary, Result | None]:
    scenario, seed, allow_overcommit, keep_rows = args
    result = simulate(scenario, seed=seed, allow_overcommit=allow_overcommit)
    return result.summary, (result if keep_rows else None)


def sweep(scenario: Scenario, grid: dict[str, Sequence[Any]], *, seeds: Iterable[int] = (0,),
          executor: Any = None, max_workers: int | None = None, keep_rows: bool = False,
          allow_overcommit: bool = False) -> list[SweepPoint]:
    """Simulate every combination of the knob values in ``grid`` (and every seed).

    ``sweep(s, {"rate_rps": [50, 100, 150], "model": ["sync", "async"]})``.
    Every point is validated before any runs, so a bad value fails at once.
    ``executor``: None for local processes, ``"serial"`` to run in this
    process, a concurrent.futures executor, or a dask.distributed Client.
    """
    if not isinstance(grid, dict) or not grid:
        raise ValueError("grid must map knob names to lists of values, e.g. {'rate_rps': [10, 20]}")
    for name, values in grid.items():
        resolve_knob(name)
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable) or not list(values):
            raise ValueError(f"grid[{name!r}] must be a non-empty list of values")
    names = list(grid)
    seeds = list(seeds)
    combos = [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]
    jobs = [(scenario.with_knobs(**knobs), seed, allow_overcommit, keep_rows)
            for knobs in combos for seed in seeds]
    if not allow_overcommit:
        for sc, *_ in jobs:
            sc.check()
    outputs = _map(_run_point, jobs, executor, max_workers)
    return [SweepPoint(knobs, seed, summary, result)
            for (knobs, seed), (summary, result) in zip(
                ((k, s) for k in combos for s in seeds), outputs, strict=True)]


def _context():
    """forkserver where there is one (Linux; Python 3.14's default): unlike fork it is
    safe beside threads (Jupyter, dask), and unlike spawn it does not re-run the
    caller's main script. spawn elsewhere (macOS, Windows)."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


def _main_is_importable() -> bool:
    """New worker processes re-import the caller's main script; one read from
    stdin (``python -``) cannot be, so such a caller runs its sweep serially."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return path is None or os.path.isfile(path)


def _map(fn, jobs: list, executor: Any, max_workers: int | None) -> list:
    if executor == "serial" or (executor is None and len(jobs) == 1):
        return [fn(job) for job in jobs]
    if executor is None and not _main_is_importable():
        return [fn(job) for job in jobs]
    if executor is None:
        workers = max_workers or min(len(jobs), os.cpu_count() or 1)
        with ProcessPoolExecutor(max_workers=workers, mp_context=_context()) as pool:
            return list(pool.map(fn, jobs, chunksize=max(1, len(jobs) // (4 * workers))))
    if hasattr(executor, "gather"):  # dask.distributed.Client
        return executor.gather(executor.map(fn, jobs, pure=False))
    if hasattr(executor, "map"):
        return list(executor.map(fn, jobs))
    raise TypeError(f"executor must be None, 'serial', a concurrent.futures executor or a dask Client; "
                    f"got {type(executor).__name__}")
