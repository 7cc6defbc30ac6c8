"""The discrete-event model: requests flowing through a Python API server.

``simulate(scenario, seed=...)`` builds a SimPy environment holding:

* the API server's cores (processor sharing, ``cpu.py``) shared by every process;
* per worker process: a GIL (or, for an event loop, the loop itself) as a FIFO
  lock, a SQLAlchemy-style connection pool, a local cache, a threadpool;
* the server model's admission: gunicorn's shared accept queue in front of
  ``workers x threads`` slots, or uvicorn's event loops that accept everything;
* the DB server's cores, a shared Redis, and the NoSQL store's token buckets.

Each request follows its endpoint's recipe (DESIGN.md): CPU, cache, DB
(pool, the route's own statements, then ``queries_per_request`` x (wait + DB CPU)), NoSQL with retries,
background work. One seed, one answer: every random stream is drawn from its
own child of ``numpy.random.SeedSequence(seed)``, so changing a server knob
does not change which requests arrive (common random numbers).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import simpy

from .backends import TokenBucket, TtlCache, ZipfKeys
from .cpu import FairShare, ProcessorSharing, TimeSliced
from .distributions import Draws
from .locks import Semaphore, Task
from .result import COLUMNS, Result, in_window, summarise
from .scenario import Endpoint, Scenario
from .traffic import EndpointMix, arrival_times, streams

__all__ = ["db_round_trips", "simulate"]

# error codes (result.ERROR_CODES)
_BACKLOG, _LIMIT, _POOL, _THROTTLED, _TIMEOUT = 1, 2, 3, 4, 5


# How Linux shares an API server core among worker processes (cpu.FairShare): by the CPU each
# has had, remembered across sleeps. EEVDF's base slice scales with log2 CPUs: 1.4 ms on the
# 2-CPU reference VM (sysctl_sched_base_slice in /sys/kernel/debug/sched/debug, kernel 6.18),
# and a process that has run its slice gives the core to one that has had less the moment the
# slice runs out, not at the next 4-ms tick (CONFIG_HZ=250): on the host, a process sharing a core
# was preempted after 1.40-1.44 ms of running, p10-p90 (perf sched_switch, 2026-12-05); a sleeper
# keeps its lag up to max(2 x slice, tick) (kernel/sched/fair.c, update_entity_lag), and a waking
# process that has had less takes the core at once. On the host (benchmarks/cpu_sharing.py), four
# processes each cycling 2.7 ms of CPU, a 5-ms sleep and 0.7 ms of CPU, with two 0.1-ms cuts in
# the first burn: 234 cycles/s, core 85% busy, all four runnable 43% of the time, none 15%. This
# model: 247, 84%, 42-44% and 16%; plain 2.4 / 5 / 0.9 ms: host 236 (79% busy), model 259 (86%;
# enforcing slices at the tick instead, 292). On another day (kernel build v1272, 2026-12-06)
# the same host kept the plain cycle out of step, 283 cycles/s with the core 100% busy, and the
# 4 Flask workers saturated with their core 98% busy: as bursts taking turns in 1.4-ms slices do
# (294 cycles/s, 100%): Hardware.api_cpu_sharing "round-robin" (cpu.TimeSliced), which
# calibrate() picks when a run near capacity says so.
OS_TICK_S, OS_SLICE_S = 0.004, 0.0014
OS_LAG_S = max(2 * OS_SLICE_S, OS_TICK_S)
OS_SLICE_TICK_S = None  # when a slice's end is enforced: when it runs out (cpu.FairShare's tick_s)
# A core that idled pays for waking (Hardware.wake_cpu_ms) only after a long idle: on the
# reference VM, fixed work after an idle gap took no extra CPU up to 6 ms, then more the longer
# the gap, the full extra from 20 ms on (benchmarks/cold_core.py, 2026-12-05: +0.04 ms at 8-10 ms,
# +0.19 at 15, +0.47-0.53 at 20-50); the host runs other guests' work meanwhile and the caches go
# cold. So the apps' CPU per request falls from low load to a third of capacity and is flat
# above it (FastAPI x 1: 3.96 ms at 17%, 3.75 / 3.68 / 3.75 at 34-68%, 3.74 saturated), where
# every idle paying it had the model's CPU fall all the way to saturation and its capacity 12%
# too high. The wake costs a linear share between the two (cpu.FairShare).
WAKE_COLD_S = (0.006, 0.020)


def api_cpu(env: simpy.Environment, cores: int, sharing: str, wake_s: float = 0.0) -> FairShare | TimeSliced:
    """The API server's cores as the model shares them among worker processes (Hardware.
    api_cpu_sharing): "fair" with the OS's slice, tick and lag above, or "round-robin" in its
    base slices, out of step; a core that idled pays ``wake_s`` to wake (WAKE_COLD_S)."""
    if sharing == "fair":
        return FairShare(env, cores, OS_SLICE_S, OS_SLICE_TICK_S, OS_LAG_S, wake_s, WAKE_COLD_S)
    return TimeSliced(env, cores, OS_SLICE_S, wake_s, WAKE_COLD_S)

# An awaited driver call resumes its task in two loop iterations: the future's
# callback (a thread's call_soon_threadsafe, or the protocol's data_received),
# then the task's step it schedules with call_soon (asyncio/futures.py, tasks.py).
PASSES_PER_TRIP = 2
# Round trips to the database per statement and per connection checkout, async drivers:
# * aiosqlite under SQLAlchemy's adapter (sqlalchemy/connectors/asyncio.py): cursor(),
#   execute(), fetchall() and close() each await the connection's thread; the pool's
#   reset-on-return ROLLBACK once per checkout.
# * asyncpg: one Bind/Execute per statement (prepared statements are cached); BEGIN and
#   the reset-on-return ROLLBACK once per checkout.
DRIVER_TRIPS = {"sqlite": (4, 1), "postgresql": (1, 2)}


def db_round_trips(endpoint: Endpoint, database: str) -> int:
    """An async driver's round trips for one request that uses its connection already open:
    each statement's (Endpoint.statements), then the checkout's."""
    per_statement, per_checkout = DRIVER_TRIPS[database]
    return endpoint.statements * per_statement + per_checkout if endpoint.statements else 0


# SQLAlchemy's QueuePool keeps at most pool_size idle connections: a checkout with none
# idle opens a new one (up to pool_size + max_overflow), and a connection returned to a
# pool already holding pool_size idle ones is closed (pool/impl.py, _do_get and
# _do_return_conn). Under bursts past pool_size, connections churn. Their cost, measured
# on the reference machine with the lab's engines (a new connection, then one discarded):
# aiosqlite: 5 trips to its new thread (connect, then the dialect's and the lab's functions
# registered), 0.5 ms CPU; closing, 2 trips beyond the reset, 0.26 ms. asyncpg: TCP,
# startup and the dialect's codecs in 4 trips, 1.0 ms CPU here and 1.5 ms more of waiting
# for PostgreSQL to fork a backend; closing, 0.26 ms. Sync drivers are given the same CPU
# and waits; their round trips cost nothing extra, with no loop to come back to.
class ConnectionCost(NamedTuple):
    open_trips: int
    open_cpu_ms: float
    open_wait_ms: float
    close_trips: int  # beyond the reset on return
    close_cpu_ms: float


CONNECTION_COST = {"sqlite": ConnectionCost(5, 0.5, 0.0, 2, 0.26),
                   "postgresql": ConnectionCost(4, 1.0, 1.5, 2, 0.26)}


class _Process:
    """One OS process of the API server (a gunicorn or uvicorn worker)."""

    __slots__ = ("index", "gil", "sliced", "loop", "pool", "idle_connections", "nosql", "cache", "tokens",
                 "inflight", "gc_due")

    def __init__(self, index: int, env: simpy.Environment, scenario: Scenario) -> None:
        s, b = scenario.server, scenario.backends
        self.index = index
        # A sync worker runs one request at a time: nothing competes for its GIL.
        # Threads share the GIL; an asyncio loop runs its ready callbacks first come, first
        # served (BaseEventLoop._run_once): for both, one FIFO lock, held per burst.
        self.gil = None if s.model in ("sync", "async-blocking") else Semaphore(env, 1)
        # Threads in one process take turns on the GIL every switch interval.
        self.sliced = s.threads_per_process > 1
        # async-blocking: an `async def` handler whose every call blocks never
        # reaches an await, so it holds the event loop from its first line to its last.
        self.loop = Semaphore(env, 1) if s.model == "async-blocking" else None
        self.pool = Semaphore(env, b.pool_size + b.max_overflow)
        self.idle_connections = 0  # open and in the pool; SQLAlchemy opens them on demand
        self.nosql = Semaphore(env, b.nosql_max_connections)  # httpx connection pool of this process
        self.cache = TtlCache(b.ttl_s) if b.cache == "local" else None
        self.tokens = Semaphore(env, s.threadpool_tokens) if s.model == "threadpool" else None
        self.inflight = 0
        self.gc_due = [0.0, 0.0]  # collections of generations 1 and 2 owed, in fractions (phases set by _Model)


class _Spread:
    """One request's framework CPU on an event loop, a share per loop pass.

    uvicorn's protocol callbacks, SQLAlchemy's greenlet hops and the driver's result
    delivery each run a little of it, so a request does not hold the loop for two
    lumps but for many small steps, each between the others'. The last step takes
    what is left, so the request pays all of it whatever path it took (a cache hit
    takes fewer steps). With ``edge_share`` (Server.framework_edge_share, which
    calibration fits), the first and the last step take that share between them
    (parsing and routing, serialising and writing) and the steps between share the rest.
    """

    __slots__ = ("share", "left", "first")

    def __init__(self, total_s: float, steps: int, edge_share: float | None = None) -> None:
        self.left = total_s
        if edge_share is None:
            self.share = self.first = total_s / steps
        else:  # the first and the last step take edge_share / 2 each, the steps between the rest
            self.first = total_s * edge_share / 2
            self.share = total_s * (1 - edge_share) / max(1, steps - 2)

    def take_first(self) -> float:
        self.left -= self.first
        return self.first

    def take(self) -> float:
        share = self.share if self.share < self.left else self.left
        self.left -= share
        return share


@dataclass(frozen=True)
class _Recipe:
    """An endpoint's recipe bound to its random streams (ms values drawn per use)."""

    cpu: Draws
    io: Draws
    db_cpu: Draws
    background: Draws
    cacheable: bool
    queries: int
    route_statements: int  # the route's own, before the queries (Endpoint.statements)
    nosql_reads: int
    nosql_writes: int
    deferred: bool


class _Model:
    def __init__(self, scenario: Scenario, seed: int, trace: list | None,
                 arrivals: list[float] | None) -> None:
        self.scenario = sc = scenario
        self.seed = seed
        self.trace = trace
        self.env = env = simpy.Environment()
        s, b, w, h = sc.server, sc.backends, sc.workload, sc.hardware
        generators = iter(streams(seed, 8 + 4 * len(w.endpoints)))

        def rng():
            return next(generators)

        # the first three streams are the traffic's: the load generator draws them alike
        self.rng_arrivals, self.mix, self.rng_think = rng(), EndpointMix(w, rng()), rng()
        self.keys = ZipfKeys(w.key_count, w.zipf_alpha, rng())
        self.nosql_latency = Draws(b.nosql_latency_ms, rng())
        self.recipes = [
            _Recipe(Draws(e.cpu_ms, rng()), Draws(e.io_ms, rng()), Draws(e.db_cpu_ms, rng()),
                    Draws(e.background_ms, rng()), e.cacheable and b.cache != "off",
                    e.queries_per_request, e.statements - e.queries_per_request, e.nosql_reads, e.nosql_writes,
                    e.background == "deferred")
            for e in w.endpoints
        ]
        self.arrivals = arrivals
        self.gc_pauses = s.gc_pauses
        self.gc_collections = [0, 0]
        rng_gc = rng()

        self.cpu = api_cpu(env, h.api_cores, h.api_cpu_sharing, h.wake_cpu_ms / 1000)
        self.embedded_db = b.database == "sqlite"
        self.event_loop = s.model == "async"
        self.trips_per_statement, self.trips_per_checkout = DRIVER_TRIPS[b.database]
        self.connection_cost = CONNECTION_COST[b.database]
        self.connections = [0, 0]  # database connections opened, closed
        self.loop_steps = [self._loop_steps(e) for e in w.endpoints]
        # the DB server's many backends with short queries: the classic processor-sharing model
        # (it is not measured here; the API server is)
        self.db_cpu = ProcessorSharing(env, h.db_cores)
        self.processes = [_Process(i, env, sc) for i in range(s.workers)]
        for p in self.processes:
            # somewhere between two young collections when the run starts, but just past a full
            # one: a freshly started app collects fully as its imports settle (the FastAPI app's
            # GC log shows one about a second before the load, in every run)
            young, _ = rng_gc.random(2)  # two draws, as before: the streams after it stay put
            p.gc_due = [float(young), 0.0]
        self.shared_cache = TtlCache(b.ttl_s) if b.cache == "redis" else None
        self.reads = TokenBucket(h.nosql_read_units, h.nosql_burst_s, h.nosql_start_burst_s)
        self.writes = TokenBucket(h.nosql_write_units, h.nosql_burst_s, h.nosql_start_burst_s)

        self.gunicorn = s.model in ("sync", "threads")
        # gthread keeps connections alive between requests; the sync worker closes each
        self.linger = s.model == "sync" and h.network_rtt_ms > 0
        if self.gunicorn:
            # gunicorn: every worker blocks in accept() on one listening socket. The
            # kernel hands each connection to the longest-waiting idle worker, so the
            # free slots form a FIFO, and connections wait in the listen backlog.
            self.slots = Semaphore(env, s.workers * s.threads)
            self.free = deque(p for _ in range(s.threads) for p in self.processes)
        self.next_process = 0
        self.framework_s = s.framework_cpu_ms / 1000
        self.switch_s = s.gil_switch_interval_ms / 1000
        self.rtt_s = h.network_rtt_ms / 1000
        self.cache_local_s = b.cache_local_ms / 1000
        self.redis_s = b.redis_rtt_ms / 1000
        self.pool_timeout_s = b.pool_timeout_s
        self.window = (w.warmup_s, w.warmup_s + w.duration_s)
        self.rows: list[tuple] = []
        self.pending: dict[int, tuple[float, int]] = {}  # sent, not yet answered
        self.client = Semaphore(env, w.client_connections)  # the load generator's connections
        self.holding: set[int] = set()  # requests holding one
        # (deadline, rid) in the order connections were taken, which is the order of the
        # deadlines: while anyone waits for a connection, a free one goes to the longest waiter
        self.deadlines: deque[tuple[float, int]] = deque()
        self.expiry_armed = False
        self.timeout_s = w.timeout_s
        self.hold = {"gil": 0.0, "pool": 0.0}  # busy time accumulated, for utilisation
        self.snapshots: dict[str, dict[str, float]] = {}
        self.samples: list[tuple] = []

    def _loop_steps(self, e) -> int:
        """An event loop's steps for one request on the path that misses the cache: arrival,
        the handler's first step, each round trip's passes, the response."""
        trips = e.nosql_reads + e.nosql_writes + db_round_trips(e, self.scenario.backends.database)
        if e.cacheable and self.scenario.backends.cache == "redis":
            trips += 2  # GET, then SET
        return 3 + PASSES_PER_TRIP * trips

    # -- the phases ------------------------------------------------------------

    def _log(self, rid: int, what: str) -> None:
        self.trace.append((round(self.env.now * 1000, 6), rid, what))

    def cpu_burst(self, proc: _Process, work_s: float):
        """Run Python code: hold the process's GIL (or loop), share the cores.

        On an event loop each burst is one callback: it waits for every
        callback made ready before it (the rest of the iteration in progress).
        """
        gil = proc.gil
        if gil is None:
            yield self.cpu.run(work_s, proc.index)
            return
        quantum = self.switch_s if proc.sliced else math.inf
        while work_s > 0:
            q = work_s if work_s <= quantum else quantum
            wait = gil.acquire()
            if wait is not None:
                yield wait
            t0 = self.env.now
            yield self.cpu.run(q, proc.index)
            gil.release()
            self.hold["gil"] += self.env.now - t0
            work_s -= q

    def collect_garbage(self, proc: _Process, rid: int | None) -> float:
        """The pause, in seconds, of any collection this request's allocations trigger: CPython
        collects inside the allocating code, so the pause holds the process's GIL (or loop).
        Collections come at the scenario's rate per request, evenly, as thresholds make them; a
        full one takes longer the more requests the process holds (Server.gc_gen2_pause_ms)."""
        pause_ms = 0.0
        for generation, (rate, ms) in enumerate(self.gc_pauses, start=1):
            due = proc.gc_due[generation - 1] + rate
            if due >= 1.0:
                due -= 1.0
                pause_ms += ms if generation == 1 else self.scenario.server.gc_gen2_pause_ms(proc.inflight)
                self.gc_collections[generation - 1] += 1
                if rid is not None:
                    self._log(rid, f"gc{generation} p{proc.index}")
            proc.gc_due[generation - 1] = due
        return pause_ms / 1000

    def open_connection(self, proc: _Process, spread: _Spread | None):
        """A new database connection: the driver's CPU, its round trips, the server's wait."""
        cost = self.connection_cost
        self.connections[0] += 1
        yield from self.cpu_burst(proc, cost.open_cpu_ms / 1000)
        yield from self.loop_trips(proc, cost.open_trips, spread)
        if cost.open_wait_ms:
            yield self.env.timeout(cost.open_wait_ms / 1000)

    def close_connection(self, proc: _Process, spread: _Spread | None):
        """A connection the full pool does not keep, closed."""
        cost = self.connection_cost
        self.connections[1] += 1
        yield from self.cpu_burst(proc, cost.close_cpu_ms / 1000)
        yield from self.loop_trips(proc, cost.close_trips, spread)

    def loop_trips(self, proc: _Process, trips: int, spread: _Spread | None):
        """An async driver's round trips coming back to the loop: two passes each."""
        yield from self.loop_passes(proc, trips * PASSES_PER_TRIP, spread)

    def loop_passes(self, proc: _Process, passes: int, spread: _Spread | None):
        """Callbacks on the event loop, each running its share of the request's framework
        CPU (``spread``), each waiting for the rest of the iteration in progress.
        Nothing on threads or worker processes, which have no loop to come back to."""
        if not self.event_loop:
            return
        loop = proc.gil
        for _ in range(passes):
            cpu_s = spread.take() if spread is not None else 0.0
            if cpu_s > 0:
                yield from self.cpu_burst(proc, cpu_s)
                continue
            wait = loop.acquire()
            if wait is not None:
                yield wait
            loop.release()

    def nosql_call(self, proc: _Process, bucket: TokenBucket, spread: _Spread | None):
        """One NoSQL call with botocore-legacy retries; returns (ok, throttles)."""
        b = self.scenario.backends
        throttles = 0
        for attempt in range(1, b.nosql_max_attempts + 1):
            wait = proc.nosql.acquire()  # a connection from the process's httpx pool
            if wait is not None:
                yield wait
            ok = bucket.take(self.env.now)
            yield self.env.timeout(self.nosql_latency() / 1000)
            proc.nosql.release()
            yield from self.loop_trips(proc, 1, spread)  # httpx: the response read on the loop
            if ok:
                return True, throttles
            throttles += 1
            if attempt < b.nosql_max_attempts:
                # botocore legacy: base * growth_factor ** (attempts - 1), in a sleep
                # (time.sleep in the sync client, asyncio.sleep in the async one)
                backoff_ms = b.nosql_backoff_base_ms * b.nosql_backoff_factor ** (attempt - 1)
                yield self.env.timeout(backoff_ms / 1000)
        return False, throttles

    # -- one request -------------------------------------------------------------

    def request(self, rid: int, ep: int):
        env = self.env
        t_sched = env.now
        trace = self.trace is not None
        recipe = self.recipes[ep]
        self.pending[rid] = (t_sched, ep)
        # One request per client connection: past client_connections in flight, a
        # request waits in the client (an overloaded server admits no faster than it answers).
        wait = self.client.acquire()
        if wait is not None:
            self._arm_expiry()
            got = yield wait | env.timeout(self.timeout_s)
            if wait not in got:  # the client gave up before it could send: left pending, a timeout
                self.client.cancel(wait)
                return
        self.holding.add(rid)
        self.deadlines.append((t_sched + self.timeout_s, rid))
        if self.gunicorn:
            if self.slots.queued() >= self.scenario.server.backlog:
                self._reject(rid, t_sched, ep, -1, 0, _BACKLOG)  # connection refused: no response
                return
            wait = self.slots.acquire()
            if wait is not None:
                yield wait
            proc = self.free.popleft()
        else:
            # uvicorn workers share the listening socket; connections spread
            # across the processes about evenly.
            proc = self.processes[self.next_process]
            self.next_process = (self.next_process + 1) % len(self.processes)
            limit = self.scenario.server.limit_concurrency
            if limit is not None and proc.inflight >= limit:
                self._reject(rid, t_sched, ep, proc.index, 503, _LIMIT)
                return
            proc.inflight += 1
            # FastAPI `def` endpoint: a threadpool token; async-blocking: the loop itself
            held = proc.tokens or proc.loop
            if held is not None:
                wait = held.acquire()
                if wait is not None:
                    yield wait
        t_start = env.now
        if trace:
            self._log(rid, f"start p{proc.index}")
        error = 0
        throttles = 0
        cache_hit = -1
        cache_ms = pool_wait_ms = db_ms = nosql_ms = 0.0

        # Framework CPU comes in two halves: parsing and routing before the handler,
        # serialising and writing the response after its I/O. On an event loop it is
        # spread over every step the request takes on the loop (_Spread).
        spread = _Spread(self.framework_s, self.loop_steps[ep], self.scenario.server.framework_edge_share) \
            if self.event_loop and self.framework_s else None
        work_s = (spread.take_first() if spread else self.framework_s / 2) + recipe.cpu() / 1000
        if self.gc_pauses[0][0] or self.gc_pauses[1][0]:
            work_s += self.collect_garbage(proc, rid if trace else None)
        cache = (self.shared_cache or proc.cache) if recipe.cacheable else None
        local_inline = cache is not None and cache is proc.cache and self.event_loop
        if local_inline:  # a dict lookup inside the same task step: no pass of its own
            work_s += self.cache_local_s
        # uvicorn parses the request in data_received and starts the app as a
        # new task: its first step runs one loop iteration later
        yield from self.loop_passes(proc, 1, spread)
        if work_s <= 0:
            pass
        elif proc.gil is None:
            yield self.cpu.run(work_s, proc.index)
        else:
            yield from self.cpu_burst(proc, work_s)
        t = env.now
        cpu_ms = (t - t_start) * 1000

        if cache is not None:
            key = self.keys()
            if cache is self.shared_cache:
                yield env.timeout(self.redis_s)  # GET
                yield from self.loop_trips(proc, 1, spread)
            elif not local_inline:
                yield from self.cpu_burst(proc, self.cache_local_s)
            cache_hit = 1 if cache.lookup(key, env.now) else 0
            cache_ms = (env.now - t) * 1000

        if cache_hit != 1 and recipe.queries:
            t = env.now
            wait = proc.pool.acquire()
            if wait is not None:
                got = yield wait | env.timeout(self.pool_timeout_s)
                if wait not in got:  # SQLAlchemy raises TimeoutError; the app answers 503
                    proc.pool.cancel(wait)
                    error = _POOL
            if not error:
                if proc.idle_connections:
                    proc.idle_connections -= 1
                else:
                    yield from self.open_connection(proc, spread)
            t_conn = env.now
            pool_wait_ms = (t_conn - t) * 1000
            if not error:
                if trace:
                    self._log(rid, "db")
                # the route's own statements: their time is in the calibrated io_ms, their trips are here
                yield from self.loop_trips(proc, recipe.route_statements * self.trips_per_statement, spread)
                for _ in range(recipe.queries):
                    yield env.timeout(recipe.io() / 1000)
                    db_cpu_s = recipe.db_cpu() / 1000
                    if db_cpu_s <= 0:
                        pass
                    elif not self.embedded_db:
                        yield self.db_cpu.run(db_cpu_s)
                    elif proc.gil is None:  # SQLite: the query's CPU is this process's
                        yield self.cpu.run(db_cpu_s, proc.index)
                    else:
                        yield from self.cpu_burst(proc, db_cpu_s)
                    yield from self.loop_trips(proc, self.trips_per_statement, spread)
                yield from self.loop_trips(proc, self.trips_per_checkout, spread)
                if proc.idle_connections < self.scenario.backends.pool_size:
                    proc.idle_connections += 1
                else:
                    yield from self.close_connection(proc, spread)
                proc.pool.release()
                self.hold["pool"] += env.now - t_conn
                db_ms = (env.now - t_conn) * 1000
                if cache is not None:
                    if cache is self.shared_cache:
                        yield env.timeout(self.redis_s)  # SET key value EX ttl
                        yield from self.loop_trips(proc, 1, spread)
                        cache_ms += self.redis_s * 1000
                    cache.store(key, env.now)

        if not error and (recipe.nosql_reads or recipe.nosql_writes):
            t = env.now
            for bucket, calls in ((self.reads, recipe.nosql_reads), (self.writes, recipe.nosql_writes)):
                for _ in range(calls):
                    ok, n = yield from self.nosql_call(proc, bucket, spread)
                    throttles += n
                    if not ok:
                        error = _THROTTLED
                        break
                if error:
                    break
            nosql_ms = (env.now - t) * 1000

        background_s = recipe.background() / 1000
        if not error and background_s > 0 and not recipe.deferred:
            yield env.timeout(background_s)

        last_s = spread.left if spread is not None else self.framework_s / 2
        if last_s > 0:
            if proc.gil is None:
                yield self.cpu.run(last_s, proc.index)
            else:
                yield from self.cpu_burst(proc, last_s)
        t_end = env.now
        if trace:
            self._log(rid, "end")
        self._record(rid, t_sched, t_start, t_end + self.rtt_s, 503 if error else 200, error, ep, proc.index,
                     cache_hit, throttles, cpu_ms, cache_ms, pool_wait_ms, db_ms, nosql_ms, t_end - t_start)
        if self.linger:
            # gunicorn's sync worker closes the connection gracefully (RFC 9112 section 9.6,
            # gunicorn.util.close_graceful): it half-closes, then waits in poll() for the
            # client's FIN, one round trip, before it takes the next connection. Off the core:
            # on the reference VM the worker slept there once a request, 0.07 ms p50 and
            # 0.13 ms p90 at saturation (perf sched_switch/sched_wakeup, 2026-12-05).
            yield env.timeout(self.rtt_s)
        self._release(proc, t_start)
        if not error and background_s > 0 and recipe.deferred:
            # After the response (FastAPI BackgroundTasks, a thread in Flask): the
            # client does not wait. A blocking call in a loop still holds it.
            if proc.loop is not None:
                wait = proc.loop.acquire()
                if wait is not None:
                    yield wait
                yield env.timeout(background_s)
                proc.loop.release()
            else:
                yield env.timeout(background_s)

    def _release(self, proc: _Process, t_start: float) -> None:
        if self.gunicorn:
            self.free.append(proc)
            self.slots.release()
            return
        proc.inflight -= 1
        if proc.tokens is not None:
            proc.tokens.release()
        elif proc.loop is not None:
            proc.loop.release()
            self.hold["gil"] += self.env.now - t_start

    def _reject(self, rid: int, t: float, ep: int, proc: int, status: int, error: int) -> None:
        """A request turned away on arrival, before any work."""
        end = t + self.rtt_s if status else t
        self._record(rid, t, t, end, status, error, ep, proc, -1, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    def _arm_expiry(self) -> None:
        """The client hangs up on a request at its timeout and reuses the connection (the
        server works on). That matters only while requests wait for a connection, so one
        timer, for the earliest deadline, runs only then: not one per request."""
        while self.deadlines and self.deadlines[0][1] not in self.holding:
            self.deadlines.popleft()  # answered already
        if self.expiry_armed or not self.deadlines:
            return
        self.expiry_armed = True
        self.env.timeout(max(0.0, self.deadlines[0][0] - self.env.now)).callbacks.append(self._expire)

    def _expire(self, _event) -> None:
        self.expiry_armed = False
        while self.deadlines and self.deadlines[0][0] <= self.env.now:
            self._hang_up(self.deadlines.popleft()[1])
        if self.client.queued():
            self._arm_expiry()

    def _hang_up(self, rid: int) -> None:
        """The client is done with this request's connection (answered, refused or timed out)."""
        if rid in self.holding:
            self.holding.discard(rid)
            self.client.release()

    def _record(self, rid, t_sched, t_start, t_end, status, error, ep, proc, cache_hit, throttles,
                cpu_ms, cache_ms, pool_wait_ms, db_ms, nosql_ms, app_s) -> None:
        del self.pending[rid]
        self._hang_up(rid)
        self.rows.append((t_sched, t_start, t_end, status, error, ep, proc, cache_hit, throttles,
                          cpu_ms, cache_ms, pool_wait_ms, db_ms, nosql_ms, app_s * 1000))

    # -- traffic -----------------------------------------------------------------

    def open_loop(self) -> None:
        """Send each request at its time: a chain of timeouts, each starting one request."""
        times = sorted(self.arrivals) if self.arrivals is not None else arrival_times(self.scenario.workload,
                                                                                       self.rng_arrivals)
        upcoming = iter(enumerate(zip(times, self.mix.draw(len(times)), strict=True)))
        env, request = self.env, self.request

        def send_due(_event=None) -> None:
            for rid, (t, ep) in upcoming:
                delay = t - env.now
                if delay > 0:
                    env.timeout(delay).callbacks.append(lambda _e, rid=rid, ep=ep: (Task(request(rid, ep)), send_due()))
                    return
                Task(request(rid, ep))

        send_due()

    def closed_loop(self, user: int):
        """One user: send, wait for the response (or give up), think, repeat."""
        w = self.scenario.workload
        env = self.env
        horizon = w.warmup_s + w.duration_s
        rid = user
        while env.now < horizon:
            ep = self.mix.draw(1)[0]
            req = env.process(self.request(rid, ep))
            yield req | env.timeout(w.timeout_s)
            rid += w.users
            if w.think_time_s > 0:
                yield env.timeout(self.rng_think.exponential(w.think_time_s))

    def mark(self, name: str, at: float):
        """Snapshot the counters at the start and end of the measured window."""
        yield self.env.timeout(at)
        self.cpu._advance()
        self.db_cpu._advance()
        self.snapshots[name] = {
            "api_cpu": self.cpu.busy_area, "db_cpu": self.db_cpu.busy_area, "gil": self.hold["gil"],
            "api_cpu_jobs": self.cpu.jobs_area, "db_cpu_jobs": self.db_cpu.jobs_area,
            "pool": self.hold["pool"], "reads": self.reads.taken, "writes": self.writes.taken,
        }

    def sampler(self, every_s: float, until: float):
        """Queue lengths over time, for the notebooks' charts."""
        env = self.env
        while env.now <= until:
            accept = self.slots.queued() if self.gunicorn else 0
            gil_wait = sum((p.gil or p.loop).queued() for p in self.processes if (p.gil or p.loop))
            pool_wait = sum(p.pool.queued() for p in self.processes)
            busy = self.slots.in_use if self.gunicorn else sum(p.inflight for p in self.processes)
            self.samples.append((env.now, accept, busy, self.cpu.jobs, gil_wait, pool_wait, self.db_cpu.jobs))
            yield env.timeout(every_s)

    # -- run ---------------------------------------------------------------------

    def run(self) -> Result:
        sc = self.scenario
        w, s, h, b = sc.workload, sc.server, sc.hardware, sc.backends
        env = self.env
        start, end = self.window
        env.process(self.mark("start", start))
        env.process(self.mark("end", end))
        env.process(self.sampler(max(w.duration_s / 200, 0.01), end))
        if w.arrival == "closed" and self.arrivals is None:
            for u in range(w.users):
                env.process(self.closed_loop(u))
        else:
            self.open_loop()
        last = max(self.arrivals) if self.arrivals else end
        env.run(until=last + w.timeout_s + 1e-9)

        # explicit arrivals (hand-checked tests): every request counts, over the whole run
        window = (start, end) if self.arrivals is None else (0.0, env.now)
        every = self._rows(w.timeout_s)
        a, z = self.snapshots.get("start", {}), self.snapshots.get("end", {})
        dur = w.duration_s

        def used(key):
            return (z.get(key, 0.0) - a.get(key, 0.0)) / dur

        if self.gunicorn:  # worker slots occupied, from the rows
            served = every["start_s"] + every["app_ms"] / 1000
            busy = np.clip(np.minimum(served, end) - np.maximum(every["start_s"], start), 0, None)
            workers_util = float(busy.sum()) / (dur * s.workers * s.threads)
        else:  # share of time each event loop (or GIL) was held
            workers_util = used("gil") / s.workers
        utilisation = {
            "api_cpu": used("api_cpu") / h.api_cores,
            "workers": workers_util,
            "pool": used("pool") / (s.workers * (b.pool_size + b.max_overflow)),
            "db_cpu": used("db_cpu") / h.db_cores,
            "nosql_read": used("reads") / h.nosql_read_units,
            "nosql_write": used("writes") / h.nosql_write_units,
        }
        summary = summarise(every, window_s=window, utilisation=utilisation)
        rows = {k: v[in_window(every, window, "scheduled_s")] for k, v in every.items()}
        samples = np.array(self.samples, dtype=float).reshape(-1, 7)
        names = ("t_s", "accept_queue", "in_service", "cpu_jobs", "gil_waiting", "pool_waiting", "db_cpu_jobs")
        timeseries = {n: samples[:, i] for i, n in enumerate(names)}
        return Result(kind="simulated", scenario=sc, seed=self.seed, rows=rows, summary=summary,
                      timeseries=timeseries,
                      meta={"fit_problems": sc.problems(),
                            "requests_total": int(every["status"].size),  # warm-up and drain included
                            # time-averaged jobs on each CPU, from its own state (Little's law: L = lambda W)
                            "mean_jobs": {"api_cpu": used("api_cpu_jobs"), "db_cpu": used("db_cpu_jobs")},
                            # over the whole run: pool churn (a steady pool opens pool_size per process, once)
                            "db_connections_opened": self.connections[0],
                            "db_connections_closed": self.connections[1],
                            "db_connection_cpu_ms": self.connections[0] * self.connection_cost.open_cpu_ms
                            + self.connections[1] * self.connection_cost.close_cpu_ms,
                            # over the whole run: Python's GC pauses, generations 1 and 2
                            "gc_collections": list(self.gc_collections),
                            # over the whole run: bursts that found a core idle, in full wakes paid
                            # (wake_cpu_ms each; a share after a shorter idle, WAKE_COLD_S)
                            "api_cpu_wakes": self.cpu.wakes,
                            # over the whole run: a process's burst sent back to wait for the core
                            # (the apps count involuntary context switches, the same thing)
                            "api_cpu_preemptions": self.cpu.preemptions})

    def _rows(self, timeout_s: float) -> dict[str, np.ndarray]:
        """Every request of the run, in the order sent, client timeouts applied."""
        names = [c for c in COLUMNS if not c.startswith("latency")]
        # still unanswered when the run ended: the client timed out on them
        never = math.inf
        self.rows.extend((t, never, never, 0, _TIMEOUT, ep, -1, -1, 0, 0, 0, 0, 0, 0, 0)
                         for t, ep in self.pending.values())
        table = np.array(self.rows, dtype=float).reshape(-1, len(names))
        table = table[np.argsort(table[:, 0], kind="stable")]
        rows = {n: table[:, i] for i, n in enumerate(names)}
        latency = (rows["end_s"] - rows["scheduled_s"]) * 1000
        late = latency > timeout_s * 1000
        rows["status"][late] = 0
        rows["error"][late] = _TIMEOUT
        rows["end_s"][late] = rows["scheduled_s"][late] + timeout_s
        latency[late] = timeout_s * 1000
        rows["latency_ms"] = latency
        rows["latency_uncorrected_ms"] = latency.copy()
        return {n: rows[n].astype(COLUMNS[n]) for n in COLUMNS}


def simulate(scenario: Scenario, *, seed: int = 0, allow_overcommit: bool = False,
             trace: list | None = None, arrivals: list[float] | None = None) -> Result:
    """Run the model once and return its Result.

    ``seed``: one seed, one answer. ``allow_overcommit``: run even when the
    scenario does not fit its hardware (otherwise ScenarioDoesNotFit names
    what is short). ``trace``: a list that receives ``(time_ms, request, what)``
    events, for hand-checkable tests. ``arrivals``: explicit send times in
    seconds, replacing the workload's arrival process; all requests are kept.
    """
    if not isinstance(scenario, Scenario):
        raise TypeError(f"simulate() needs a Scenario, got {type(scenario).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not allow_overcommit:
        scenario.check()
    return _Model(scenario, int(seed), trace, arrivals).run()
