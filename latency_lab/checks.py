"""Notebook 00's checks: what is installed, what this machine is, and whether the apps start."""

from __future__ import annotations

import importlib.metadata as md
import os
import time

from simulator.scenario import Hardware, Scenario

from . import modes, services

PACKAGES = ("simpy", "numpy", "plotly", "ipywidgets", "anywidget", "jupyterlab", "fastapi", "uvicorn", "flask",
            "gunicorn", "httpx", "sqlalchemy", "psycopg", "asyncpg", "redis")


def versions() -> dict[str, str]:
    """Each package the lab builds on, and its installed version (or "missing")."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "missing"
    return out


def machine() -> dict[str, object]:
    """Cores, the CPUs this process may use, and how the load generator and the apps will share them."""
    from lab_apps.measure import split_cpus

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    app, gen = split_cpus()
    return {"cores": os.cpu_count(), "usable CPUs": cpus, "app CPUs": app, "load generator CPUs": gen,
            "note": ("the generator and the apps share one CPU: measured latencies include the generator's work"
                     if not app else "the generator and the apps each get CPUs of their own")}


def reference_hardware() -> list[tuple[str, str]]:
    """The reference hardware of case study 000, as the model's defaults hold it."""
    h = Hardware()
    return [("API server", f"{h.api_cores} cores, {h.api_memory_mb / 1024:g} GB"),
            ("relational DB server", f"{h.db_cores} cores, {h.db_memory_mb / 1024:g} GB, "
                                     f"max_connections {h.db_max_connections}"),
            ("NoSQL store", f"{h.nosql_read_units:,.0f} reads/s and {h.nosql_write_units:,.0f} writes/s provisioned")]


def apps_start(timeout_s: float = 60.0) -> dict[str, str]:
    """Start each lab app once, ask its /config, stop it; say how long it took or why it failed."""
    import httpx

    from lab_apps import serve

    out = {}
    for app, model in (("flask", "sync"), ("fastapi", "async")):
        t0 = time.perf_counter()
        try:
            with serve(app, Scenario().with_knobs(model=model, workers=1), timeout_s=timeout_s) as server:
                cfg = httpx.get(f"{server.url}/config", timeout=5).json()
                out[app] = (f"started in {time.perf_counter() - t0:.1f} s, answered /config "
                            f"(server model {cfg['model']}, database {cfg['database']})")
        except Exception as exc:  # shown to the learner with its reason
            out[app] = f"FAILED: {type(exc).__name__}: {exc}"
    return out


def report() -> dict[str, object]:
    """Everything notebook 00 shows, in one dict."""
    return {"mode": modes.describe(), "packages": versions(), "machine": machine(),
            "services": [services.postgres().line(), services.redis().line()]}
