"""Plain-text tables for notebooks and the terminal (no pandas needed)."""

from __future__ import annotations

import math

from simulator.result import Result


def text_table(rows: list[dict[str, object]]) -> str:
    """Rows of equal keys as aligned columns; numbers right-aligned."""
    if not rows:
        return "(no rows)"
    keys = list(rows[0])

    def cell(v: object) -> str:
        if isinstance(v, float):
            if math.isnan(v):
                return "-"
            return f"{v:,.1f}" if abs(v) >= 10 or v == 0 else f"{v:.3g}"
        return "" if v is None else str(v)

    cells = [[cell(r.get(k)) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    numeric = [all(isinstance(r.get(k), (int, float)) or r.get(k) is None for r in rows) for k in keys]

    def line(values):
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(values, widths, numeric, strict=True))

    return "\n".join([line(keys), line(["-" * w for w in widths]), *(line(c) for c in cells)])


def run_row(name: str, r: Result) -> dict[str, object]:
    """One run's figures, as a row."""
    s = r.summary
    row: dict[str, object] = {"run": name, "kind": r.kind, "req/s": s.throughput_rps, "p50 ms": s.p50_ms,
                              "p95 ms": s.p95_ms, "p99 ms": s.p99_ms, "p99 uncorrected": s.p99_uncorrected_ms,
                              "errors": f"{s.error_rate:.1%}"}
    if not math.isnan(s.cache_hit_ratio):
        row["cache hits"] = f"{s.cache_hit_ratio:.0%}"
    unreliable = r.meta.get("unreliable") or []
    row["note"] = ("UNRELIABLE: " + "; ".join(unreliable)) if unreliable else ""
    return row


def runs_table(results: dict[str, Result]) -> str:
    rows = [run_row(name, r) for name, r in results.items()]
    keys = {k for row in rows for k in row}
    for row in rows:  # the same columns in every row
        for k in keys:
            row.setdefault(k, None)
    order = list(dict.fromkeys(k for row in rows for k in row))
    return text_table([{k: row[k] for k in order} for row in rows])


def describe_run(r: Result) -> str:
    """Where and how a measured run was taken: the app, its CPUs, the generator's, the machine."""
    m = r.meta
    if r.kind != "measured":
        return f"simulated, seed {r.seed}"
    machine = m.get("machine", {})
    gen = m.get("generator", {})
    sc = r.scenario
    load = (f"closed loop, {sc.workload.users} users, {sc.workload.think_time_s:g} s think"
            if sc.workload.arrival == "closed" else f"{sc.workload.arrival} arrivals at {sc.workload.rate_rps:g} req/s")
    return (f"{m.get('app', '?')} {sc.server.model} x {sc.server.workers}; {load} for {sc.workload.duration_s:g} s; "
            f"app CPUs {m.get('app_cpu_affinity')}, generator CPUs {gen.get('cpu_affinity')} "
            f"({machine.get('cpu_count', '?')} cores, {machine.get('platform', machine.get('system', ''))})")
