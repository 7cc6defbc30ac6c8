"""What both framework adapters do alike: response headers, /config, errors."""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

from . import cpu_work, db, domain
from .config import AppConfig
from .recipe import Response, Timing

JSON = "application/json"


def finish(response: Response, timing: Timing, started: float) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers of a response, with where its time went."""
    headers = {"Content-Type": JSON, "Server-Timing": timing.header(),
               # wall-clock span and process, so tests can count what ran at once
               "X-Lab-Span": f"{started:.6f} {time.time():.6f} {os.getpid()}",
               **response.headers}
    if timing.cache_hit is not None:  # the load generator counts hits from this, as the model does
        headers["X-Cache"] = "HIT" if timing.cache_hit else "MISS"
    if timing.throttles:
        headers["X-Lab-Throttles"] = str(timing.throttles)
    if timing.spin_cpu_s > 0:  # how fast the core ran the CPU burn: loop iterations per CPU millisecond
        headers["X-Lab-Speed"] = f"{timing.spins / (timing.spin_cpu_s * 1000):.1f}"
    return response.status, response.body, headers


def start_process(config: AppConfig) -> None:
    """What every worker process does before serving: size the CPU work's chunks; switch
    threads' GIL turns at the scenario's interval (CPython's default 5 ms; the model's
    gil_switch_interval_ms); collect garbage at its gc_threshold (0: never automatically);
    and, when the launcher asks (LAB_GC_LOG, a directory), log every collection."""
    s = config.scenario.server
    sys.setswitchinterval(s.gil_switch_interval_ms / 1000)
    if s.gc_threshold:
        gc.set_threshold(s.gc_threshold, *gc.get_threshold()[1:])
        gc.enable()
    else:
        gc.disable()
    if os.environ.get("LAB_GC_LOG"):
        log_collections(Path(os.environ["LAB_GC_LOG"]) / f"gc-{os.getpid()}.log")
    cpu_work.calibrate()


def log_collections(path: Path) -> None:
    """One line per collection of this process: wall-clock end time, generation, pause in ms."""
    out = open(path, "a", buffering=1)  # noqa: SIM115 - open for the life of the process
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            out.write(f"{time.time():.6f} {info['generation']} {(time.perf_counter() - started[0]) * 1000:.4f}\n")

    gc.callbacks.append(callback)


def error_response(error: domain.ApiError) -> Response:
    return Response(error.status, error.body(), error.headers)


def config_body(config: AppConfig) -> bytes:
    s, b = config.scenario.server, config.scenario.backends
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return domain.dumps({
        "app": config.app,
        "model": s.model,
        "workers": s.workers,
        "threads": s.threads,
        "limit_concurrency": s.limit_concurrency,
        "threadpool_tokens": s.threadpool_tokens,
        "pool": {"pool_size": b.pool_size, "max_overflow": b.max_overflow, "pool_timeout_s": b.pool_timeout_s},
        "cache": {"cache": b.cache, "ttl_s": b.ttl_s},
        "database": db.kind(config.database_url),
        "nosql": {"nosql_max_connections": b.nosql_max_connections, "nosql_max_attempts": b.nosql_max_attempts,
                  "nosql_backoff_base_ms": b.nosql_backoff_base_ms, "nosql_backoff_factor": b.nosql_backoff_factor},
        "process": {"pid": os.getpid(), "cpu_affinity": affinity, "cpu_count": os.cpu_count(),
                    "cpu_work_iterations_per_ms": round(cpu_work.iterations_per_ms(), 1),
                    "gil_switch_interval_ms": round(sys.getswitchinterval() * 1000, 6),
                    "gc_threshold": gc.get_threshold()[0] if gc.isenabled() else 0},
        "scenario": config.scenario.to_dict(),
    })
