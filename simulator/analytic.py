"""The analytic companion: instant previews and a third opinion.

Formulas a learner can check by hand:

* ``erlang_c`` / ``mmc_mean_wait_s``: M/M/c, the textbook model of gunicorn sync
  workers (c workers, one shared accept queue).
* ``mm1_ps_response_s``: processor sharing, ``E[S] / (1 - rho)`` for any
  service distribution: a CPU shared by runnable threads, or an event loop
  interleaving many requests' CPU phases.
* ``mva``: exact mean value analysis of a closed network with multi-server
  (load-dependent) stations, for closed-loop load (N users with think time).

``predict(scenario)`` puts them together as a flow-equivalent server: MVA of
what happens *inside* the server (API CPU, DB CPU, waits) for 1..K requests
in service gives the throughput X(k); the server's concurrency cap K (sync
workers, threads, threadpool tokens, or none for an event loop) then makes
it a birth-death queue, solved exactly for open or closed load. Means are
exact where the network is product-form (exponential times, M/M/c); the
percentiles assume exponential tails and are previews, not promises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .backends import ttl_hit_ratio
from .scenario import Scenario

__all__ = ["erlang_c", "mmc_mean_wait_s", "mm1_ps_response_s", "mva", "predict", "Prediction"]


def erlang_c(servers: int, offered_load: float) -> float:
    """P(an arrival waits) in M/M/c with ``offered_load`` = lambda / mu Erlangs."""
    c, a = servers, offered_load
    if a >= c:
        return 1.0
    # Stable recursion through Erlang B: B(0) = 1, B(k) = a B / (k + a B).
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    rho = a / c
    return b / (1.0 - rho + rho * b)


def mmc_mean_wait_s(arrival_rps: float, service_s: float, servers: int) -> float:
    """Mean time in queue of M/M/c (Erlang C / (c mu - lambda))."""
    mu = 1.0 / service_s
    if arrival_rps >= servers * mu:
        return math.inf
    return erlang_c(servers, arrival_rps * service_s) / (servers * mu - arrival_rps)


def mm1_ps_response_s(arrival_rps: float, service_s: float) -> float:
    """Mean response time of M/G/1 processor sharing: E[S] / (1 - rho) = 1 / (mu - lambda)."""
    rho = arrival_rps * service_s
    return math.inf if rho >= 1 else service_s / (1.0 - rho)


def mva(demands_s, servers, users: int, think_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Exact MVA with load-dependent multi-server stations.

    ``demands_s[i]``: service demand per request at station i; ``servers[i]``:
    its servers, or 0 for a pure delay (a wait nobody queues for).
    Returns (X, R): throughput and response time for 1..users users.
    """
    d = np.asarray(demands_s, dtype=float)
    c = np.asarray(servers, dtype=float)
    k = len(d)
    # p[i][j]: P(j requests at station i), for the previous population
    p = [np.zeros(users + 1) for _ in range(k)]
    for i in range(k):
        p[i][0] = 1.0
    xs, rs = np.zeros(users), np.zeros(users)
    for n in range(1, users + 1):
        r = np.zeros(k)
        for i in range(k):
            if c[i] == 0 or d[i] == 0:
                r[i] = d[i]
            else:
                j = np.arange(1, n + 1)
                r[i] = float(np.sum(j / np.minimum(j, c[i]) * d[i] * p[i][:n]))
        x = n / (think_s + r.sum())
        for i in range(k):
            if c[i] == 0 or d[i] == 0:
                continue
            new = np.zeros(users + 1)
            j = np.arange(1, n + 1)
            new[1:n + 1] = x * d[i] / np.minimum(j, c[i]) * p[i][:n]
            new[0] = max(0.0, 1.0 - new[1:].sum())
            p[i] = new
        xs[n - 1], rs[n - 1] = x, r.sum()
    return xs, rs


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """What the formulas say about a scenario."""

    throughput_rps: float
    capacity_rps: float  # the most the server can finish per second
    bottleneck: str  # what limits capacity_rps
    mean_ms: float  # inf when the offered load exceeds capacity
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cache_hit_ratio: float
    utilisation: dict[str, float] = field(default_factory=dict)

    @property
    def stable(self) -> bool:
        return math.isfinite(self.mean_ms)


def _demands(sc: Scenario, rate_rps: float) -> dict[str, float]:
    """Per-request demands in seconds, averaged over the endpoint mix."""
    s, b, w = sc.server, sc.backends, sc.workload
    weights = np.array([e.weight for e in w.endpoints])
    weights = weights / weights.sum()
    caches = s.workers if b.cache == "local" else 1
    hit = ttl_hit_ratio(rate_rps, b.ttl_s, w.key_count, w.zipf_alpha, caches) if b.cache != "off" else 0.0
    out = dict(cpu=0.0, wait=0.0, db_cpu=0.0, nosql_reads=0.0, nosql_writes=0.0, hit=0.0, cacheable=0.0, conn=0.0)
    classes: list[tuple[float, float]] = []  # (share of requests, time in the server with no queueing, s)
    for p, e in zip(weights, w.endpoints, strict=True):
        cached = e.cacheable and b.cache != "off"
        h = hit if cached else 0.0
        miss = 1.0 - h
        cpu = s.framework_cpu_ms + s.gc_cpu_ms + e.cpu_ms.mean
        wait = 0.0
        if cached and b.cache == "local":
            cpu += b.cache_local_ms
        elif cached:
            wait += b.redis_rtt_ms * (1 + miss)  # GET, and SET after a miss
        wait += miss * e.queries_per_request * e.io_ms.mean + b.nosql_latency_ms.mean * (e.nosql_reads + e.nosql_writes)
        if e.background == "inline":
            wait += e.background_ms.mean
        # the two kinds of request this endpoint makes: a cache hit skips the queries, a miss runs them
        rtt = b.redis_rtt_ms if cached and b.cache == "redis" else 0.0
        common = cpu + b.nosql_latency_ms.mean * (e.nosql_reads + e.nosql_writes) + (
            e.background_ms.mean if e.background == "inline" else 0.0)
        if h > 0:
            classes.append((p * h, (common + rtt) / 1000))
        if miss > 0:
            classes.append((p * miss, (common + 2 * rtt + e.queries_per_request * (e.io_ms.mean + e.db_cpu_ms.mean))
                            / 1000))
        out["cpu"] += p * cpu / 1000
        out["wait"] += p * wait / 1000
        db_cpu = p * miss * e.queries_per_request * e.db_cpu_ms.mean / 1000
        out["cpu" if b.database == "sqlite" else "db_cpu"] += db_cpu  # SQLite's CPU is the app's
        # a request holds one pooled connection for all its queries (lab_apps.recipe, the model's request())
        out["conn"] += p * miss * e.queries_per_request * (e.io_ms.mean + e.db_cpu_ms.mean) / 1000
        out["nosql_reads"] += p * e.nosql_reads
        out["nosql_writes"] += p * e.nosql_writes
        out["hit"] += p * h
        out["cacheable"] += p * cached
    out["classes"] = classes
    return out


def predict(scenario: Scenario) -> Prediction:
    """Throughput, capacity, bottleneck and latency of a scenario, from formulas."""
    sc = scenario
    s, h, w = sc.server, sc.hardware, sc.workload
    closed = w.arrival == "closed"
    rate = w.rate_rps if not closed else w.users / max(w.think_time_s, 1e-3)
    d = _demands(sc, rate)
    if closed:  # the hit ratio depends on the rate the users achieve: one refinement pass
        first = _solve(sc, d, rate)
        d = _demands(sc, max(first[0], 1e-9))
    x, cap, bottleneck, n_mean, p_wait, cap_wait_s = _solve(sc, d, rate)
    # limits outside the flow-equivalent server: provisioned NoSQL units and the DB pools
    nosql_cap = min(h.nosql_read_units / d["nosql_reads"] if d["nosql_reads"] else math.inf,
                    h.nosql_write_units / d["nosql_writes"] if d["nosql_writes"] else math.inf)
    for limit, name in ((nosql_cap, "nosql capacity"), (_pool_capacity(sc, d["conn"]), "DB connection pool")):
        if limit < cap:
            cap, bottleneck = limit, name
    x = min(x, cap)
    blocking = s.model == "async-blocking"
    hold = d["cpu"] + d["db_cpu"] + d["wait"]  # time in the server with nothing to queue for
    if closed:
        mean_s = w.users / x - w.think_time_s if x > 0 else math.inf
    elif x < rate * (1 - 1e-9):
        mean_s = math.inf
    else:
        mean_s = n_mean / rate
    util = {
        "api_cpu": x * d["cpu"] / h.api_cores,
        "workers": min(1.0, x * (hold if s.model in ("sync", "threads") or blocking else d["cpu"])
                       / (s.workers * (s.threads if s.model == "threads" else 1))),
        "db_cpu": x * d["db_cpu"] / h.db_cores,
        "nosql_read": x * d["nosql_reads"] / h.nosql_read_units,
        "nosql_write": x * d["nosql_writes"] / h.nosql_write_units,
    }
    rtt_s = h.network_rtt_ms / 1000
    if math.isfinite(mean_s):
        # Queueing delay, in two parts: waiting for the cap (sync workers,
        # threadpool tokens) with P(cap full) for an exponential time, exact for
        # M/M/c; and the rest (CPU shared with other requests), taken as an
        # exponential with its mean: a preview of processor sharing's spread.
        queue_s = max(mean_s - hold, 0.0)
        cap_wait = min(cap_wait_s, queue_s)
        shared = queue_s - cap_wait

        p50, p95, p99 = _mixture_quantiles(d["classes"], min(1.0, mean_s / hold) if hold > 0 else 1.0,
                                           cap_wait, shared, p_wait, rtt_s, (0.50, 0.95, 0.99))
        mean_ms = (mean_s + rtt_s) * 1000
    else:
        mean_ms = p50 = p95 = p99 = math.inf
    return Prediction(throughput_rps=float(x), capacity_rps=float(cap), bottleneck=bottleneck,
                      mean_ms=float(mean_ms), p50_ms=float(p50), p95_ms=float(p95), p99_ms=float(p99),
                      cache_hit_ratio=d["hit"] / d["cacheable"] if d["cacheable"] else math.nan,
                      utilisation={k: float(v) for k, v in util.items()})


def _mixture_quantiles(classes, scale: float, cap_wait: float, shared: float, p_wait: float, rtt_s: float,
                       qs) -> list[float]:
    """Quantiles (ms) of the response time: each class's own time plus a queueing delay all share.

    The delay has a part for waiting for the cap (with probability p_wait, an
    exponential of mean cap_wait / p_wait) and a part for sharing the CPU (an
    exponential of mean ``shared``); its quantile at tail t is the sum of the
    two parts' quantiles, as for one class. The response time is a mixture over
    the classes (endpoints, cache hits and misses), whose CDF is solved for q.
    """
    tails = np.geomspace(1e-12, 1.0, 600)
    extra = shared * np.log(1 / tails)
    if p_wait > 0 and cap_wait > 0:
        extra = extra + np.where(p_wait > tails, cap_wait / p_wait * np.log(np.maximum(p_wait / tails, 1.0)), 0.0)
    order = np.argsort(extra)
    xs, cdf = extra[order], (1 - tails)[order]  # P(delay <= x)
    shares = np.array([c[0] for c in classes], dtype=float)
    holds = np.array([c[1] for c in classes], dtype=float) * scale + rtt_s
    shares = shares / shares.sum()
    grid = np.unique(np.concatenate([holds[:, None] + xs[None, :]]).ravel())
    mix = (shares[:, None] * np.interp(grid[None, :] - holds[:, None], xs, cdf, left=0.0, right=1.0)).sum(axis=0)
    return [float(grid[min(np.searchsorted(mix, q), grid.size - 1)]) * 1000 for q in qs]


def _pool_capacity(sc: Scenario, conn_s: float) -> float:
    """Requests per second the DB pools can serve: connections in use / time each request holds one.

    A pool lends at most pool_size + max_overflow connections per process, and
    a process never has more requests holding one than it runs at once.
    """
    if conn_s <= 0:
        return math.inf
    s, b = sc.server, sc.backends
    per_process = b.pool_size + b.max_overflow
    running = {"sync": 1, "threads": s.threads, "threadpool": s.threadpool_tokens, "async-blocking": 1}.get(s.model)
    if running is not None:
        per_process = min(per_process, running)
    if s.limit_concurrency is not None:
        per_process = min(per_process, s.limit_concurrency)
    return s.workers * per_process / conn_s


def _groups(sc: Scenario) -> tuple[int, float, int | None]:
    """(independent queues, CPU servers per queue, concurrency cap per queue)."""
    s = sc.server
    if s.model == "sync":  # one accept queue in front of all workers
        return 1, float(min(sc.hardware.api_cores, s.workers)), s.workers
    if s.model == "threads":  # one accept queue; one GIL per process
        return 1, float(min(sc.hardware.api_cores, s.workers)), s.workers * s.threads
    # uvicorn: each process its own event loop and its own requests
    cap = {"async": None, "threadpool": s.threadpool_tokens, "async-blocking": 1}[s.model]
    if s.limit_concurrency is not None:
        cap = s.limit_concurrency if cap is None else min(cap, s.limit_concurrency)
    return s.workers, 1.0, cap


def _cpu_speed(sc: Scenario, d: dict[str, float], rate: float, groups: int) -> float:
    """Share of a core one event loop gets at ``rate`` requests per second.

    The loops share the machine's cores by processor sharing; at load ``a``
    Erlangs on ``c`` cores a CPU burst is stretched by 1 + C(c, a) / (c - a)
    (M/M/c-PS), and a loop never gets less than c / loops.
    """
    cores = sc.hardware.api_cores
    floor = min(1.0, cores / groups)
    if groups == 1:
        return 1.0
    a = rate * d["cpu"]
    if a >= cores:
        return floor
    return max(1.0 / (1.0 + erlang_c(cores, a) / (cores - a)), floor)


def _curve(sc: Scenario, d: dict[str, float], groups: int, cpu_servers: float, cap: int | None,
           speed: float) -> tuple[np.ndarray, list[float], list[float]]:
    """X(k): throughput of one queue with k requests in service, k = 1..cap (MVA)."""
    if sc.server.model == "async-blocking":  # the loop is held for everything
        demands, servers = [d["cpu"] / speed + d["db_cpu"] + d["wait"]], [0.0]
    else:
        demands = [d["cpu"] / speed, d["db_cpu"], d["wait"]]
        servers = [cpu_servers, max(sc.hardware.db_cores / groups, 1e-9), 0.0]
    # With no cap (an event loop), go far enough past the knee
    # N* = (total demand) x (bound) that X(k) has flattened out.
    bound = min((c / x for x, c in zip(demands, servers, strict=True) if c and x), default=math.inf)
    knee = sum(demands) * bound if math.isfinite(bound) else 1.0
    limit = cap if cap is not None else int(min(4096, max(64, 4 * knee + 50)))
    xs, _ = mva(demands, servers, min(limit, 4096))
    return np.asarray(xs), demands, servers


def _solve(sc: Scenario, d: dict[str, float], rate: float):
    """Flow-equivalent server: (throughput, capacity, bottleneck, mean in system,
    P(the cap is full on arrival), mean wait for the cap in seconds)."""
    s, w = sc.server, sc.workload
    groups, cpu_servers, cap = _groups(sc)
    # Capacity: the fixed point where the loops' CPU share matches the load they finish.
    speed_at_cap = _cpu_speed(sc, d, math.inf, groups) if groups > 1 else 1.0
    for _ in range(50 if groups > 1 else 0):
        x_cap = float(_curve(sc, d, groups, cpu_servers, cap, speed_at_cap)[0][-1]) * groups
        nxt = _cpu_speed(sc, d, x_cap * (1 - 1e-6), groups)
        if abs(nxt - speed_at_cap) < 1e-6:
            break
        speed_at_cap = 0.5 * (speed_at_cap + nxt)
    full, demands, servers = _curve(sc, d, groups, cpu_servers, cap, speed_at_cap)
    cap_x = float(full[-1]) * groups
    speed = _cpu_speed(sc, d, rate, groups)
    bound = min((c / x for x, c in zip(demands, servers, strict=True) if c and x), default=math.inf)
    if s.model == "async-blocking":
        bottleneck = "event loop blocked by I/O"
    elif cap is not None and full[-1] < 0.98 * bound:
        bottleneck = {"sync": "sync workers", "threads": "worker threads", "threadpool": "threadpool tokens",
                      "async": "limit_concurrency"}[s.model]
    else:
        i = int(np.argmax([x / c if c else 0 for x, c in zip(demands, servers, strict=True)]))
        bottleneck = ["API CPU", "DB CPU", "waits"][i] + (" (one event loop per process)" if i == 0 and groups > 1 else "")
    xk = _curve(sc, d, groups, cpu_servers, cap, speed)[0]
    if w.arrival == "closed":
        users = max(1, round(w.users / groups))
        z = w.think_time_s
        mu = np.concatenate([[0.0], xk[np.minimum(np.arange(1, users + 1), len(xk)) - 1]])
        # birth-death over 0..users in service: birth (users - n) / Z, death X(n)
        logp = np.zeros(users + 1)
        for n in range(1, users + 1):
            birth = math.log((users - n + 1) / z) if z > 0 else 700.0
            logp[n] = logp[n - 1] + birth - math.log(mu[n])
        p = np.exp(logp - logp.max())
        p /= p.sum()
        x = float(np.sum(p * mu)) * groups
        return x, cap_x, bottleneck, float(np.sum(p * np.arange(users + 1))) * groups, 0.0, 0.0
    lam = rate / groups
    if lam >= xk[-1] or rate >= cap_x:
        return cap_x, cap_x, bottleneck, math.inf, 1.0, math.inf
    # open birth-death: birth lam, death X(min(n, K)); the geometric tail past K in closed form
    k = len(xk)
    pk = np.exp(np.concatenate([[0.0], np.cumsum(np.log(lam / xk))]))  # n = 0..k
    r = lam / xk[-1]
    total = pk.sum() + pk[-1] * r / (1 - r)
    n_mean = (np.sum(np.arange(k + 1) * pk) + pk[-1] * (k * r / (1 - r) + r / (1 - r) ** 2)) / total
    if cap is None:
        return rate, cap_x, bottleneck, float(n_mean) * groups, 0.0, 0.0
    p_wait = pk[-1] / (1 - r) / total  # P(an arrival finds the cap full)
    return rate, cap_x, bottleneck, float(n_mean) * groups, float(p_wait), float(p_wait / (xk[-1] - lam))
