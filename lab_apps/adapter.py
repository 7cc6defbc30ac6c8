"""What both framework adapters do alike: response headers, /config, errors."""

from __future__ import annotations

import os
import sys
import time

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
    return response.status, response.body, headers


def start_process(config: AppConfig) -> None:
    """What every worker process does before serving: size the CPU work's chunks, and switch
    threads' GIL turns at the scenario's interval (CPython's default 5 ms; the model's
    gil_switch_interval_ms)."""
    sys.setswitchinterval(config.scenario.server.gil_switch_interval_ms / 1000)
    cpu_work.calibrate()


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
                    "gil_switch_interval_ms": round(sys.getswitchinterval() * 1000, 6)},
        "scenario": config.scenario.to_dict(),
    })
