"""What-if scenarios: hardware, server, workload and backends.

One ``Scenario`` drives both halves of the lab: ``simulate`` reads it, and the
lab apps start with the same knobs under the same names and units. Every
class here is frozen and keyword-only; make variants with
``dataclasses.replace`` or ``Scenario.with_knob``, never by mutation.

Defaults are the reference hardware of case study 000 (API server 2 cores /
4 GB, DB server 4 cores / 16 GB, NoSQL 1,000 reads/s and 350 writes/s) and
the frameworks' own defaults, each cited where it is set.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .distributions import Distribution, Fixed, as_distribution

__all__ = [
    "Hardware",
    "Server",
    "Endpoint",
    "Workload",
    "Backends",
    "Scenario",
    "ScenarioDoesNotFit",
    "SERVER_MODELS",
    "CPU_SHARING",
    "CACHE_MODES",
    "DATABASES",
    "ARRIVALS",
    "KNOBS",
    "REFERENCE_ENDPOINTS",
    "resolve_knob",
]

SERVER_MODELS = ("sync", "threads", "async", "threadpool", "async-blocking")
CPU_SHARING = ("fair", "round-robin")  # Hardware.api_cpu_sharing
ASYNC_MODELS = ("async", "threadpool", "async-blocking")
CACHE_MODES = ("off", "local", "redis")
DATABASES = ("sqlite", "postgresql")
ARRIVALS = ("poisson", "constant", "closed")
BACKGROUND_MODES = ("inline", "deferred")


class ScenarioDoesNotFit(ValueError):
    """The scenario asks for more than the hardware has (memory, DB connections)."""


# -- validation helpers: every message names the field and the allowed range --

def _int(cls: str, name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{cls}.{name} must be an integer in [{low}, {high}], got {value!r}")
    return value


def _num(cls: str, name: str, value: Any, low: float, high: float = math.inf, *, strict: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if strict else value >= low) and value <= high
    if not ok:
        lo = "(" if strict else "["
        hi = "inf)" if high == math.inf else f"{high:g}]"
        raise ValueError(f"{cls}.{name} must be a number in {lo}{low:g}, {hi}, got {value!r}")
    return float(value)


def _choice(cls: str, name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{cls}.{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _dist(cls: str, name: str, value: Any) -> Distribution:
    return as_distribution(value, f"{cls}.{name}")


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True, kw_only=True)
class Hardware:
    """The machines. Defaults: the reference hardware of case study 000."""

    api_cores: int = 2
    api_memory_mb: float = 4096
    api_os_reserve_mb: float = 512  # kernel, page cache, sshd, agents: never available to workers
    db_cores: int = 4
    db_memory_mb: float = 16384
    db_max_connections: int = 100  # PostgreSQL's default max_connections
    nosql_read_units: float = 1000  # provisioned reads per second
    nosql_write_units: float = 350  # provisioned writes per second
    nosql_burst_s: float = 300  # DynamoDB keeps up to 300 s of unused capacity for bursts
    nosql_start_burst_s: float = 0  # seconds of saved capacity at t=0 (0: a table used at its limit)
    network_rtt_ms: float = 0.1  # client to API server and back; loopback is ~0.05 ms
    # CPU an API server core spends to take up work after idling: leaving the idle state, the
    # switch from the idle task, caches and branch predictors gone cold. calibrate() fits it from
    # the CPU per request at low and at high load (the reference app here: 4.7-5.3 ms a request
    # at 8% of a core, 4.1-4.4 ms at 85%, on the same recipe). Paid in full after a long idle, a
    # share after a shorter one, nothing after a short one (model.WAKE_COLD_S).
    wake_cpu_ms: float = 0.0
    # How the OS shares an API core among worker processes (CPU_SHARING): "fair", by the CPU each
    # has had, a waking one taking the core at once, so identical workers fall into step and the
    # core idles while all of them wait (cpu.FairShare); "round-robin", bursts taking turns in
    # slices, first come first served, so the workers stay out of step (cpu.TimeSliced). The
    # lab's host has done each, on different days; calibrate() tells which from a run near capacity.
    api_cpu_sharing: str = "fair"

    def __post_init__(self) -> None:
        c = "Hardware"
        _set(self, "api_cores", _int(c, "api_cores", self.api_cores, 1, 256))
        _set(self, "api_memory_mb", _num(c, "api_memory_mb", self.api_memory_mb, 0, strict=True))
        _set(self, "api_os_reserve_mb", _num(c, "api_os_reserve_mb", self.api_os_reserve_mb, 0))
        _set(self, "db_cores", _int(c, "db_cores", self.db_cores, 1, 256))
        _set(self, "db_memory_mb", _num(c, "db_memory_mb", self.db_memory_mb, 0, strict=True))
        _set(self, "db_max_connections", _int(c, "db_max_connections", self.db_max_connections, 1, 100_000))
        _set(self, "nosql_read_units", _num(c, "nosql_read_units", self.nosql_read_units, 0, strict=True))
        _set(self, "nosql_write_units", _num(c, "nosql_write_units", self.nosql_write_units, 0, strict=True))
        _set(self, "nosql_burst_s", _num(c, "nosql_burst_s", self.nosql_burst_s, 0, 300))
        _set(self, "nosql_start_burst_s", _num(c, "nosql_start_burst_s", self.nosql_start_burst_s, 0, self.nosql_burst_s))
        _set(self, "network_rtt_ms", _num(c, "network_rtt_ms", self.network_rtt_ms, 0))
        _set(self, "wake_cpu_ms", _num(c, "wake_cpu_ms", self.wake_cpu_ms, 0, 100))
        _set(self, "api_cpu_sharing", _choice(c, "api_cpu_sharing", self.api_cpu_sharing, CPU_SHARING))


CPYTHON_GC_THRESHOLD = 700  # gc.get_threshold()[0] by default


@dataclass(frozen=True, kw_only=True)
class Server:
    """How the API server runs Python.

    ``sync``: gunicorn sync workers, one request per process.
    ``threads``: gunicorn gthread, ``workers`` x ``threads``, one GIL per process.
    ``async``: FastAPI ``async def`` on uvicorn, one event loop per worker.
    ``threadpool``: FastAPI plain ``def``, run on a threadpool of ``threadpool_tokens``.
    ``async-blocking``: ``async def`` calling a blocking driver; waits hold the loop.
    """

    model: str = "sync"
    workers: int = 4
    threads: int = 1  # gunicorn's default --threads
    backlog: int = 2048  # gunicorn's default --backlog (listen queue)
    limit_concurrency: int | None = None  # uvicorn --limit-concurrency: 503 past it; default none
    threadpool_tokens: int = 40  # anyio's default thread limiter, used by Starlette for `def` endpoints
    worker_memory_mb: float = 60  # resident size of one worker process with the app imported
    thread_memory_mb: float = 0.5  # resident cost of one extra thread (stack actually touched)
    master_memory_mb: float = 30  # gunicorn arbiter or uvicorn supervisor
    # Not knobs: properties of the framework that calibrate() fits from a measured run.
    framework_cpu_ms: float = 0.3  # HTTP parsing, routing, validation, serialisation per request
    gil_switch_interval_ms: float = 5.0  # CPython's sys.getswitchinterval() default (a knob: the apps set it)
    # On an event loop: the share of framework_cpu_ms spent at the request's two edges (parsing and
    # routing before the handler, serialising and writing after), the rest spread evenly over the
    # handler's loop steps (the driver's round trips). None: every step an equal share.
    framework_edge_share: float | None = None
    # a knob, set by the apps too: CPython's gc threshold0, allocations between young collections; 0 turns GC off
    gc_threshold: int = 700
    # Python's cyclic GC stops the process that allocated, for the whole collection. calibrate() fits
    # these from the app's gc.callbacks; they are stated at gc_threshold 700 and scale as
    # 700 / gc_threshold (collections of generation 0, ~0.2 ms each, stay in framework_cpu_ms).
    gc_gen1_per_request: float = 0.0  # generation-1 collections per request
    gc_gen1_ms: float = 0.0  # ... the pause of one
    gc_gen2_per_request: float = 0.0  # full collections per request
    gc_gen2_ms: float = 0.0  # ... the pause of one with no request in the process
    # A full collection traverses every tracked object, the requests' in the process too: on an
    # event loop, where every accepted request is in the process, the pause grows with them
    # (measured on FastAPI here: 24-92 ms before the load, 28-56 ms with 2-43 requests in
    # flight, 91-242 ms with hundreds queued), up to the largest pause measured.
    gc_gen2_ms_per_request_in_flight: float = 0.0
    gc_gen2_max_ms: float | None = None  # None: no cap

    def __post_init__(self) -> None:
        c = "Server"
        _set(self, "model", _choice(c, "model", self.model, SERVER_MODELS))
        _set(self, "workers", _int(c, "workers", self.workers, 1, 1024))
        _set(self, "threads", _int(c, "threads", self.threads, 1, 1024))
        if self.threads != 1 and self.model != "threads":
            raise ValueError(
                f"Server.threads applies to model 'threads' (gunicorn gthread) only; "
                f"model {self.model!r} needs threads=1, got {self.threads}"
            )
        _set(self, "backlog", _int(c, "backlog", self.backlog, 1, 1_000_000))
        if self.framework_edge_share is not None:
            _set(self, "framework_edge_share", _num(c, "framework_edge_share", self.framework_edge_share, 0, 1))
        if self.limit_concurrency is not None:
            _set(self, "limit_concurrency", _int(c, "limit_concurrency", self.limit_concurrency, 1, 1_000_000))
            if self.model not in ASYNC_MODELS:
                raise ValueError(
                    f"Server.limit_concurrency is a uvicorn option: model must be one of "
                    f"{', '.join(ASYNC_MODELS)}; got {self.model!r}"
                )
        _set(self, "threadpool_tokens", _int(c, "threadpool_tokens", self.threadpool_tokens, 1, 10_000))
        _set(self, "worker_memory_mb", _num(c, "worker_memory_mb", self.worker_memory_mb, 0))
        _set(self, "thread_memory_mb", _num(c, "thread_memory_mb", self.thread_memory_mb, 0))
        _set(self, "master_memory_mb", _num(c, "master_memory_mb", self.master_memory_mb, 0))
        _set(self, "framework_cpu_ms", _num(c, "framework_cpu_ms", self.framework_cpu_ms, 0))
        _set(self, "gil_switch_interval_ms", _num(c, "gil_switch_interval_ms", self.gil_switch_interval_ms, 0, strict=True))
        _set(self, "gc_threshold", _int(c, "gc_threshold", self.gc_threshold, 0, 10_000_000))
        for name in ("gc_gen1_per_request", "gc_gen2_per_request"):
            _set(self, name, _num(c, name, getattr(self, name), 0, 1))
        for name in ("gc_gen1_ms", "gc_gen2_ms"):
            _set(self, name, _num(c, name, getattr(self, name), 0, 10_000))
        _set(self, "gc_gen2_ms_per_request_in_flight", _num(c, "gc_gen2_ms_per_request_in_flight",
                                                             self.gc_gen2_ms_per_request_in_flight, 0, 10_000))
        if self.gc_gen2_max_ms is not None:
            _set(self, "gc_gen2_max_ms", _num(c, "gc_gen2_max_ms", self.gc_gen2_max_ms, self.gc_gen2_ms, 10_000))

    @property
    def gc_pauses(self) -> tuple[tuple[float, float], ...]:
        """(collections per request, pause in ms) of generations 1 and 2 at this gc_threshold."""
        scale = CPYTHON_GC_THRESHOLD / self.gc_threshold if self.gc_threshold else 0.0
        return ((self.gc_gen1_per_request * scale, self.gc_gen1_ms),
                (self.gc_gen2_per_request * scale, self.gc_gen2_ms))

    def gc_gen2_pause_ms(self, in_flight: int) -> float:
        """The pause of one full collection with ``in_flight`` requests in the process."""
        ms = self.gc_gen2_ms + self.gc_gen2_ms_per_request_in_flight * in_flight
        return ms if self.gc_gen2_max_ms is None else min(ms, self.gc_gen2_max_ms)

    @property
    def gc_cpu_ms(self) -> float:
        """The mean CPU per request that the modelled GC pauses take, near capacity: a full
        collection at its largest pause (the queue is long there; with no cap, at its base)."""
        (rate1, ms1), (rate2, _) = self.gc_pauses
        gen2_ms = self.gc_gen2_max_ms if self.gc_gen2_max_ms is not None else self.gc_gen2_ms
        return rate1 * ms1 + rate2 * gen2_ms

    @property
    def threads_per_process(self) -> int:
        """Threads that can run handlers in one process."""
        if self.model == "threads":
            return self.threads
        if self.model == "threadpool":
            return self.threadpool_tokens
        return 1


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    """The recipe of one route: what a request to it costs, phase by phase."""

    name: str
    weight: float = 1.0  # share of the traffic, relative to the other endpoints
    cpu_ms: Distribution = Fixed(2.0)  # handler CPU on the API server (beyond framework_cpu_ms)
    cacheable: bool = False
    queries_per_request: int = 1  # the N+1 knob
    io_ms: Distribution = Fixed(5.0)  # DB wait per query: pg_sleep / the SQLite sleep function
    db_cpu_ms: Distribution = Fixed(0.5)  # DB server CPU per query
    nosql_reads: int = 0
    nosql_writes: int = 0
    background_ms: Distribution = Fixed(0.0)  # email / webhook call, an I/O wait
    background: str = "inline"

    def __post_init__(self) -> None:
        c = f"Endpoint({self.name!r})"
        if not isinstance(self.name, str) or not self.name.replace("_", "").isalnum():
            raise ValueError(f"Endpoint.name must be a word of letters, digits and _, got {self.name!r}")
        _set(self, "weight", _num(c, "weight", self.weight, 0, strict=True))
        for name in ("cpu_ms", "io_ms", "db_cpu_ms", "background_ms"):
            _set(self, name, _dist(c, name, getattr(self, name)))
        if not isinstance(self.cacheable, bool):
            raise ValueError(f"{c}.cacheable must be true or false, got {self.cacheable!r}")
        _set(self, "queries_per_request", _int(c, "queries_per_request", self.queries_per_request, 0, 1000))
        _set(self, "nosql_reads", _int(c, "nosql_reads", self.nosql_reads, 0, 100))
        _set(self, "nosql_writes", _int(c, "nosql_writes", self.nosql_writes, 0, 100))
        _set(self, "background", _choice(c, "background", self.background, BACKGROUND_MODES))

    @property
    def statements(self) -> int:
        """Statements one request runs on its DB connection: the route's own (ROUTE_STATEMENTS),
        then the recipe's queries_per_request; none when the recipe has no queries."""
        q = self.queries_per_request
        return q + ROUTE_STATEMENTS.get(self.name, lambda _q: 0)(q) if q else 0


# What a route of the contract reads before the recipe's queries, on the same connection
# (lab_apps/recipe.py): the row (indicator), the page (indicator_list), the aggregation and
# then queries_per_request - 1 lookups of its top rows, the N+1 pattern (summary). Their time
# is in the calibrated io_ms; an async driver's round trips for each are the model's.
ROUTE_STATEMENTS = {"indicator": lambda q: 1, "indicator_list": lambda q: 1, "summary": lambda q: q}


# The routes of the API contract (DESIGN.md) with the recipes the lab apps run by default.
REFERENCE_ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint(name="indicator", cacheable=True),  # GET /indicators/{id}
        Endpoint(name="indicator_list", cpu_ms=Fixed(4.0)),  # GET /indicators?limit=&offset=
        Endpoint(name="summary", cacheable=True, cpu_ms=Fixed(8.0), queries_per_request=14,
                 db_cpu_ms=Fixed(5.0)),  # GET /reports/summary; 14 queries: case study 003's N+1
        Endpoint(name="events_read", queries_per_request=0, nosql_reads=1),  # GET /devices/{id}/events
        Endpoint(name="events_write", queries_per_request=0, nosql_writes=1),  # POST /devices/{id}/events
    )
}


@dataclass(frozen=True, kw_only=True)
class Workload:
    """The traffic: how requests arrive, to which endpoints, for how long."""

    arrival: str = "poisson"  # open loop: poisson or constant; closed loop: closed
    rate_rps: float = 50.0  # open loop target rate
    users: int = 10  # closed loop: concurrent users
    think_time_s: float = 1.0  # closed loop: mean think time (exponential)
    duration_s: float = 60.0  # measured window, after the warm-up
    warmup_s: float = 5.0  # discarded from every statistic
    timeout_s: float = 30.0  # client gives up (httpx's default is 5 s; load tools use longer)
    # The load generator's connections: one request at a time on each (HTTP/1.1); past
    # this many in flight a request waits in the client, its latency counting from its
    # scheduled time (wrk's -c; the lab's generator defaults to 1024).
    client_connections: int = 1024
    endpoints: tuple[Endpoint, ...] = (REFERENCE_ENDPOINTS["indicator"],)
    key_count: int = 10_000  # distinct ids the clients ask for
    zipf_alpha: float = 1.0  # key popularity: P(rank k) ~ 1 / k**zipf_alpha; 0 is uniform

    def __post_init__(self) -> None:
        c = "Workload"
        _set(self, "arrival", _choice(c, "arrival", self.arrival, ARRIVALS))
        _set(self, "rate_rps", _num(c, "rate_rps", self.rate_rps, 0, 1_000_000, strict=True))
        _set(self, "users", _int(c, "users", self.users, 1, 1_000_000))
        _set(self, "think_time_s", _num(c, "think_time_s", self.think_time_s, 0))
        _set(self, "duration_s", _num(c, "duration_s", self.duration_s, 0, 86_400, strict=True))
        _set(self, "warmup_s", _num(c, "warmup_s", self.warmup_s, 0, 86_400))
        _set(self, "timeout_s", _num(c, "timeout_s", self.timeout_s, 0, 3600, strict=True))
        _set(self, "client_connections", _int(c, "client_connections", self.client_connections, 1, 1_000_000))
        eps = self.endpoints
        if isinstance(eps, Endpoint):
            eps = (eps,)
        if not isinstance(eps, (tuple, list)) or not eps or not all(isinstance(e, Endpoint) for e in eps):
            raise ValueError(f"Workload.endpoints must be a non-empty list of Endpoint, got {eps!r}")
        names = [e.name for e in eps]
        if len(set(names)) != len(names):
            raise ValueError(f"Workload.endpoints names must be unique, got {names}")
        _set(self, "endpoints", tuple(eps))
        _set(self, "key_count", _int(c, "key_count", self.key_count, 1, 100_000_000))
        _set(self, "zipf_alpha", _num(c, "zipf_alpha", self.zipf_alpha, 0, 10))


@dataclass(frozen=True, kw_only=True)
class Backends:
    """Cache, relational DB pool and NoSQL client settings."""

    # sqlite: embedded in each app process, so its CPU runs on the API server's cores
    # under the process's GIL; postgresql: a server with its own db_cores.
    database: str = "sqlite"
    cache: str = "off"  # off, local (one dict per process) or redis (one shared store)
    ttl_s: float = 300.0  # case study 002 cached dashboards for 5 minutes
    cache_value_kb: float = 2.0  # size of one cached response, for the memory check
    cache_local_ms: float = 0.01  # dict lookup and copy (CPU)
    redis_rtt_ms: float = 0.3  # one Redis command on a LAN (a wait)
    pool_size: int = 5  # SQLAlchemy QueuePool default pool_size
    max_overflow: int = 10  # SQLAlchemy default max_overflow
    pool_timeout_s: float = 30.0  # SQLAlchemy default pool_timeout; past it: 503
    nosql_latency_ms: Distribution = Fixed(5.0)  # one call to the NoSQL store, throttled or not
    nosql_max_connections: int = 100  # per process: httpx's default Limits(max_connections=100)
    nosql_max_attempts: int = 10  # botocore legacy retry config for DynamoDB: 10 attempts
    nosql_backoff_base_ms: float = 50.0  # ... base 0.05 s
    nosql_backoff_factor: float = 2.0  # ... growth factor 2

    def __post_init__(self) -> None:
        c = "Backends"
        _set(self, "database", _choice(c, "database", self.database, DATABASES))
        cache = "redis" if self.cache == "shared" else self.cache
        _set(self, "cache", _choice(c, "cache", cache, CACHE_MODES))
        _set(self, "ttl_s", _num(c, "ttl_s", self.ttl_s, 0, 86_400 * 30, strict=True))
        _set(self, "cache_value_kb", _num(c, "cache_value_kb", self.cache_value_kb, 0))
        _set(self, "cache_local_ms", _num(c, "cache_local_ms", self.cache_local_ms, 0))
        _set(self, "redis_rtt_ms", _num(c, "redis_rtt_ms", self.redis_rtt_ms, 0))
        _set(self, "pool_size", _int(c, "pool_size", self.pool_size, 1, 10_000))
        _set(self, "max_overflow", _int(c, "max_overflow", self.max_overflow, 0, 10_000))
        _set(self, "pool_timeout_s", _num(c, "pool_timeout_s", self.pool_timeout_s, 0, 3600, strict=True))
        _set(self, "nosql_latency_ms", _dist(c, "nosql_latency_ms", self.nosql_latency_ms))
        _set(self, "nosql_max_connections", _int(c, "nosql_max_connections", self.nosql_max_connections, 1, 10_000))
        _set(self, "nosql_max_attempts", _int(c, "nosql_max_attempts", self.nosql_max_attempts, 1, 100))
        _set(self, "nosql_backoff_base_ms", _num(c, "nosql_backoff_base_ms", self.nosql_backoff_base_ms, 0))
        _set(self, "nosql_backoff_factor", _num(c, "nosql_backoff_factor", self.nosql_backoff_factor, 1, 10))


_SECTIONS = {"hardware": Hardware, "server": Server, "workload": Workload, "backends": Backends}
_ENDPOINT_KNOBS = ("cpu_ms", "io_ms", "db_cpu_ms", "queries_per_request", "background_ms", "background",
                   "nosql_reads", "nosql_writes", "cacheable")

# Every knob a learner can turn, by name, and the part of the scenario it lives in.
KNOBS: dict[str, str] = {
    **{f.name: sec for sec, cls in _SECTIONS.items() for f in fields(cls) if f.name != "endpoints"},
    **{name: "endpoints" for name in _ENDPOINT_KNOBS},
}
_ALIASES = {"rate": "rate_rps", "ttl": "ttl_s", "duration": "duration_s", "server": "model",
            "pool": "pool_size", "queries": "queries_per_request"}


def resolve_knob(name: str) -> tuple[str, str]:
    """(canonical knob name, the part of the scenario it lives in); short names allowed."""
    name = _ALIASES.get(name, name)
    section = KNOBS.get(name)
    if section is None:
        raise ValueError(f"unknown knob {name!r}; knobs are: {', '.join(sorted(KNOBS))}")
    return name, section


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A what-if: hardware, server, workload and backends, all validated."""

    hardware: Hardware = field(default_factory=Hardware)
    server: Server = field(default_factory=Server)
    workload: Workload = field(default_factory=Workload)
    backends: Backends = field(default_factory=Backends)

    def __post_init__(self) -> None:
        for name, cls in _SECTIONS.items():
            if not isinstance(getattr(self, name), cls):
                raise ValueError(f"Scenario.{name} must be a {cls.__name__}, got {getattr(self, name)!r}")

    # -- variants ---------------------------------------------------------

    def with_knob(self, name: str, value: Any) -> Scenario:
        """A copy with one knob changed: ``scenario.with_knob("workers", 8)``.

        Endpoint knobs (``cpu_ms``, ``io_ms``, ``queries_per_request``...) apply to
        every endpoint of the workload.
        """
        return self.with_knobs(**{name: value})

    def with_knobs(self, **knobs: Any) -> Scenario:
        """A copy with several knobs changed, applied together.

        Knobs of one section are set in one step, so pairs that validate
        against each other (``model`` and ``threads``) can change at once.
        """
        by_section: dict[str, dict[str, Any]] = {}
        for name, value in knobs.items():
            name, section = resolve_knob(name)
            by_section.setdefault(section, {})[name] = value
        result = self
        for section, changes in by_section.items():
            if section == "endpoints":
                eps = tuple(replace(e, **changes) for e in result.workload.endpoints)
                result = replace(result, workload=replace(result.workload, endpoints=eps))
            else:
                result = replace(result, **{section: replace(getattr(result, section), **changes)})
        return result

    def with_workers(self, workers: int) -> Scenario:
        return self.with_knob("workers", workers)

    def with_rate(self, rate_rps: float) -> Scenario:
        return self.with_knob("rate_rps", rate_rps)

    def knob(self, name: str) -> Any:
        """The current value of a knob (for endpoint knobs: the first endpoint's)."""
        name, section = resolve_knob(name)
        if section == "endpoints":
            return getattr(self.workload.endpoints[0], name)
        return getattr(getattr(self, section), name)

    # -- does it fit? -------------------------------------------------------

    def memory_mb(self) -> float:
        """Resident memory the API server's processes need."""
        s, b, w = self.server, self.backends, self.workload
        per_process = s.worker_memory_mb + (s.threads_per_process - 1) * s.thread_memory_mb
        if b.cache == "local":  # every process keeps its own copy of the hot keys
            per_process += w.key_count * b.cache_value_kb / 1024
        return s.master_memory_mb + s.workers * per_process

    def db_connections(self) -> int:
        """The most DB connections the API server can hold open at once.

        A pool opens connections only when requests need them: a sync worker
        never holds more than one, a threaded process no more than its threads,
        an event loop up to its whole pool (size + overflow).
        """
        if not any(e.queries_per_request for e in self.workload.endpoints):
            return 0
        pool = self.backends.pool_size + self.backends.max_overflow
        per_process = pool if self.server.model == "async" else min(pool, self.server.threads_per_process)
        return self.server.workers * per_process

    def problems(self) -> list[str]:
        """Why this scenario could not run on its hardware; empty when it fits."""
        out = []
        available = self.hardware.api_memory_mb - self.hardware.api_os_reserve_mb
        need = self.memory_mb()
        if need > available:
            out.append(
                f"memory: {self.server.workers} workers need {need:,.0f} MB but the API server has "
                f"{available:,.0f} MB for them ({self.hardware.api_memory_mb:,.0f} MB less "
                f"{self.hardware.api_os_reserve_mb:,.0f} MB for the OS)"
            )
        if self.backends.database == "postgresql" and self.db_connections() > self.hardware.db_max_connections:
            out.append(
                f"db connections: {self.server.workers} workers can open {self.db_connections()} "
                f"connections (pool_size {self.backends.pool_size} + max_overflow {self.backends.max_overflow} "
                f"each, as far as their concurrency needs) but the DB allows max_connections "
                f"{self.hardware.db_max_connections}; add a pooler or shrink the pools"
            )
        return out

    def check(self) -> None:
        """Raise ScenarioDoesNotFit naming every limit the scenario exceeds."""
        problems = self.problems()
        if problems:
            raise ScenarioDoesNotFit("scenario does not fit its hardware: " + "; ".join(problems))

    # -- TOML -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in _SECTIONS:
            part = getattr(self, name)
            d: dict[str, Any] = {}
            for f in fields(part):
                value = getattr(part, f.name)
                if f.name == "endpoints":
                    d["endpoints"] = [_endpoint_dict(e) for e in value]
                elif value is not None:
                    d[f.name] = value.to_toml() if isinstance(value, Distribution) else value
            out[name] = d
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        if not isinstance(data, dict):
            raise ValueError(f"a scenario must be a table, got {type(data).__name__}")
        unknown = set(data) - set(_SECTIONS)
        if unknown:
            raise ValueError(f"unknown scenario section(s): {', '.join(sorted(unknown))}; "
                             f"sections are: {', '.join(_SECTIONS)}")
        parts = {}
        for name, part_cls in _SECTIONS.items():
            table = dict(data.get(name, {}))
            _reject_unknown(part_cls, table, f"[{name}]")
            if name == "workload" and "endpoints" in table:
                table["endpoints"] = tuple(_endpoint_from(e) for e in table["endpoints"])
            try:
                parts[name] = part_cls(**table)
            except TypeError as exc:  # pragma: no cover - guarded by _reject_unknown
                raise ValueError(f"[{name}]: {exc}") from None
        return cls(**parts)

    @classmethod
    def from_toml(cls, text: str) -> Scenario:
        import tomllib

        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"scenario TOML is not valid TOML: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path) -> Scenario:
        from pathlib import Path

        p = Path(path)
        if not p.is_file():
            raise ValueError(f"scenario file not found: {p}")
        try:
            return cls.from_toml(p.read_text())
        except ValueError as exc:
            raise ValueError(f"{p}: {exc}") from None

    def to_toml(self) -> str:
        from ._toml import dumps

        return dumps(self.to_dict())


def _endpoint_dict(e: Endpoint) -> dict[str, Any]:
    return {f.name: (getattr(e, f.name).to_toml() if isinstance(getattr(e, f.name), Distribution)
                     else getattr(e, f.name)) for f in fields(e)}


def _endpoint_from(table: Any) -> Endpoint:
    if isinstance(table, str):  # a name from the API contract
        if table not in REFERENCE_ENDPOINTS:
            raise ValueError(f"unknown endpoint {table!r}; the contract's are: {', '.join(REFERENCE_ENDPOINTS)}")
        return REFERENCE_ENDPOINTS[table]
    if not isinstance(table, dict) or "name" not in table:
        raise ValueError(f"[[workload.endpoints]] needs a name, got {table!r}")
    table = dict(table)
    _reject_unknown(Endpoint, table, f"[[workload.endpoints]] {table['name']!r}")
    base = REFERENCE_ENDPOINTS.get(table["name"])
    return replace(base, **table) if base else Endpoint(**table)


def _reject_unknown(cls: type, table: dict[str, Any], where: str) -> None:
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(table) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                         f"allowed: {', '.join(sorted(allowed))}")
