"""One result schema for simulated and measured runs.

A run is a table with one row per request (``Result.rows``, columns of numpy
arrays) and a ``Summary``. Latency is measured from the *scheduled* send
time, so a server that stalls cannot hide its queue behind a slow client
(coordinated omission); ``latency_uncorrected_ms`` keeps the send-to-response
figure beside it. In the model the two are the same.

Percentiles are over successful responses (status below 400); failures are
counted in ``error_rate``, which includes client timeouts. That is what a
dashboard of a real service shows, and what ``measure`` reports too.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Result", "Summary", "summarise", "succeeded", "in_window", "COLUMNS", "ERROR_CODES", "machine_info"]

# Why a request failed; 0 for success. Measured runs use the same codes.
ERROR_CODES = {
    0: "none",
    1: "backlog_full",  # the listen queue was full: connection refused
    2: "limit_concurrency",  # uvicorn --limit-concurrency answered 503
    3: "db_pool_timeout",  # SQLAlchemy pool_timeout expired: 503
    4: "nosql_throttled",  # retries exhausted on ProvisionedThroughputExceeded: 503
    5: "client_timeout",  # the client gave up waiting
    6: "http_error",  # any other error response (measured runs)
    7: "connection_error",  # the connection failed (measured runs)
}

# column name -> dtype. Times are seconds since the run started, phases in ms.
COLUMNS = {
    "scheduled_s": float,
    "start_s": float,  # the app began work (after the accept queue / worker wait)
    "end_s": float,  # the client had the whole response
    "status": int,  # HTTP status; 0 when no response came
    "error": int,  # an ERROR_CODES key
    "endpoint": int,  # index into the scenario's endpoints
    "process": int,  # which worker process served it (-1 if none)
    "cache_hit": int,  # 1 hit, 0 miss, -1 no cache lookup
    "throttles": int,  # NoSQL calls throttled while serving it
    "cpu_ms": float,
    "cache_ms": float,
    "pool_wait_ms": float,
    "db_ms": float,
    "nosql_ms": float,
    "app_ms": float,  # the app's total, as its Server-Timing header reports
    "latency_ms": float,  # end - scheduled (coordinated omission corrected)
    "latency_uncorrected_ms": float,  # end - actual send
}


@dataclass(frozen=True, kw_only=True, eq=False)
class Summary:
    """The figures of one run. NaN means "not applicable" (no cache, no success)
    and compares equal to itself, so two runs with the same figures are equal."""

    requests: int
    ok: int
    errors: int
    timeouts: int
    throttles: int
    throughput_rps: float
    mean_ms: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    error_rate: float
    cache_hit_ratio: float
    p99_uncorrected_ms: float
    utilisation: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Summary) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if values.size else math.nan


def succeeded(rows: dict[str, np.ndarray]) -> np.ndarray:
    return (rows["error"] == 0) & (rows["status"] > 0) & (rows["status"] < 400)


def in_window(rows: dict[str, np.ndarray], window_s: tuple[float, float], column: str) -> np.ndarray:
    t = rows[column]
    return (t >= window_s[0]) & (t < window_s[1])


def summarise(rows: dict[str, np.ndarray], *, window_s: tuple[float, float],
              utilisation: dict[str, float] | None = None) -> Summary:
    """Summarise a run over its measured window ``(start_s, end_s)``.

    ``rows`` may hold the whole run, warm-up and drain included. Latencies
    and counts are of the requests *sent* in the window; throughput counts
    every success that *completed* in it, whenever it was sent, so a queue
    carried across the window's edges does not hide work done inside it.
    """
    duration_s = window_s[1] - window_s[0]
    completed_in_window = int((succeeded(rows) & in_window(rows, window_s, "end_s")).sum())
    rows = {k: v[in_window(rows, window_s, "scheduled_s")] for k, v in rows.items()}
    status, error = rows["status"], rows["error"]
    ok_mask = succeeded(rows)
    lat = rows["latency_ms"][ok_mask]
    n = int(status.size)
    hits = rows["cache_hit"]
    looked = hits >= 0
    return Summary(
        requests=n,
        ok=int(ok_mask.sum()),
        errors=int(((error != 0) & (error != 5)).sum()),
        timeouts=int((error == 5).sum()),
        throttles=int(rows["throttles"].sum()),
        throughput_rps=completed_in_window / duration_s,
        mean_ms=float(lat.mean()) if lat.size else math.nan,
        p50_ms=_pct(lat, 50),
        p95_ms=_pct(lat, 95),
        p99_ms=_pct(lat, 99),
        max_ms=float(lat.max()) if lat.size else math.nan,
        error_rate=float((~ok_mask).sum()) / n if n else 0.0,
        cache_hit_ratio=float(hits[looked].mean()) if looked.any() else math.nan,
        p99_uncorrected_ms=_pct(rows["latency_uncorrected_ms"][ok_mask], 99),
        utilisation=dict(utilisation or {}),
    )


def machine_info() -> dict[str, Any]:
    """Cores, CPU affinity and versions: recorded with every saved run."""
    from importlib import metadata

    versions = {}
    for pkg in ("simpy", "numpy", "fastapi", "uvicorn", "flask", "gunicorn", "httpx", "sqlalchemy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


@dataclass(frozen=True, kw_only=True, eq=False)
class Result:
    """A run: its scenario, seed, one row per request, a summary, and queues over time."""

    kind: str  # "simulated" or "measured"
    scenario: Any  # the Scenario it ran
    seed: int | None
    rows: dict[str, np.ndarray]
    summary: Summary
    timeseries: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        s = self.summary
        return (f"Result(kind={self.kind!r}, requests={s.requests}, throughput_rps={s.throughput_rps:.1f}, "
                f"p50_ms={s.p50_ms:.1f}, p99_ms={s.p99_ms:.1f}, error_rate={s.error_rate:.3f})")

    def to_json(self) -> dict[str, Any]:
        """The summary plus enough to reproduce the run (no per-request rows)."""
        meta = self.meta if "machine" in self.meta else {**self.meta, "machine": machine_info()}
        return {"kind": self.kind, "seed": self.seed, "summary": self.summary.to_dict(),
                "scenario": self.scenario.to_dict(), "meta": meta}

    def save(self, directory: str | os.PathLike, *, compress: bool = False) -> Path:
        """Write ``rows.csv`` (``rows.csv.gz`` with ``compress``) and ``run.json`` into
        ``directory``, all or nothing."""
        target = Path(directory)
        if target.exists() and any(target.iterdir()):
            raise FileExistsError(f"refusing to overwrite a saved run: {target} is not empty")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            names = list(COLUMNS)
            table = np.column_stack([np.asarray(self.rows[c], dtype=float) for c in names]) \
                if self.rows["status"].size else np.empty((0, len(names)))
            fmt = ["%d" if COLUMNS[c] is int else "%.6f" for c in names]
            np.savetxt(tmp / ("rows.csv.gz" if compress else "rows.csv"), table, delimiter=",", header=",".join(names), comments="", fmt=fmt)
            doc = self.to_json() | {"timeseries": {k: np.asarray(v).tolist() for k, v in self.timeseries.items()}}
            (tmp / "run.json").write_text(json.dumps(doc, indent=2))
            if target.exists():
                target.rmdir()
            tmp.rename(target)
        except BaseException:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
            raise
        return target

    @classmethod
    def load(cls, directory: str | os.PathLike) -> Result:
        from .scenario import Scenario

        d = Path(directory)
        if not (d / "run.json").is_file():
            raise FileNotFoundError(f"no saved run in {d}: run.json is missing")
        doc = json.loads((d / "run.json").read_text())
        rows_file = d / "rows.csv" if (d / "rows.csv").is_file() else d / "rows.csv.gz"
        table = np.loadtxt(rows_file, delimiter=",", skiprows=1, ndmin=2)
        names = list(COLUMNS)
        rows = {c: table[:, i].astype(COLUMNS[c]) if table.size else np.empty(0, COLUMNS[c])
                for i, c in enumerate(names)}
        summary = {k: (math.nan if v is None else v) for k, v in doc["summary"].items()}
        return cls(kind=doc["kind"], scenario=Scenario.from_dict(doc["scenario"]), seed=doc["seed"],
                   rows=rows, summary=Summary(**summary),
                   timeseries={k: np.asarray(v) for k, v in doc.get("timeseries", {}).items()},
                   meta=doc.get("meta", {}))
