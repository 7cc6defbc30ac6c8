"""The endpoints, written once: each is a generator that yields its I/O steps.

A handler does its CPU work in plain Python (``cpu_work.burn``) and yields
what it needs from the outside world: a cache lookup, a batch of queries on
one pooled connection, a NoSQL call, a sleep. A driver performs each step
and sends the result back: ``drivers.SyncDriver`` with blocking clients
(Flask, FastAPI ``def``, and the async-blocking mistake), ``AsyncDriver``
with awaitable ones (FastAPI ``async def``). The request follows the same
recipe as the model's (DESIGN.md): CPU, cache, DB, NoSQL, background work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from simulator.distributions import Draws

from . import cpu_work, domain
from .db import AGGREGATE, ONE, PAGE, TOP, WAIT
from .domain import ApiError

# -- the steps a handler can yield ------------------------------------------------

@dataclass(frozen=True)
class CacheGet:
    key: str


@dataclass(frozen=True)
class CacheSet:
    key: str
    value: bytes


@dataclass(frozen=True)
class Queries:
    """Run these statements, in order, on one connection from the pool.

    Each is (statement, params, shape) with shape "one", "all" or "none".
    Returns the list of results.
    """

    statements: tuple[tuple[Any, dict, str], ...]


@dataclass(frozen=True)
class NoSql:
    """One NoSQL call, retried on throttling; returns the parsed response."""

    path: str
    doc: dict


@dataclass(frozen=True)
class Sleep:
    seconds: float
    deferred: bool = False  # after the response: FastAPI BackgroundTasks, a thread in Flask


@dataclass(frozen=True)
class Ping:
    what: str  # "db", "cache" or "nosql"


@dataclass
class Timing:
    """Where the time went, for the Server-Timing header (ms)."""

    cpu: float = 0.0
    cache: float = 0.0
    pool: float = 0.0
    db: float = 0.0
    nosql: float = 0.0
    app: float = 0.0
    throttles: int = 0
    cache_hit: bool | None = None
    spins: int = 0  # the CPU burn's loop iterations, and the CPU seconds they took: the core's speed
    spin_cpu_s: float = 0.0
    deferred: list[float] = field(default_factory=list)

    def header(self) -> str:
        return (f"cpu;dur={self.cpu:.3f}, cache;dur={self.cache:.3f}, pool;dur={self.pool:.3f}, "
                f"db;dur={self.db:.3f}, nosql;dur={self.nosql:.3f}, app;dur={self.app:.3f}")


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def static(response: Response):
    """A recipe with no steps: answers ``response`` at once."""
    return response
    yield


def fail(error: ApiError):
    """A recipe that fails at once with ``error``."""
    raise error
    yield


# -- the recipe -----------------------------------------------------------------------

class Api:
    """The API contract's endpoints for one process, following the scenario's recipes."""

    def __init__(self, config) -> None:
        self.config = config
        self.cache_on = config.scenario.backends.cache != "off"
        self._rng = np.random.default_rng()
        self._draws: dict = {}  # distribution -> its block-drawn stream, made on first use

    def _draw(self, dist) -> float:
        if not dist.variance:
            return dist.mean
        draws = self._draws.get(dist)
        if draws is None:
            draws = self._draws[dist] = Draws(dist, self._rng)
        return draws()

    def _cpu(self, recipe, timing: Timing):
        import time

        t0 = time.perf_counter()
        spins, cpu_s = cpu_work.burn(self._draw(recipe.cpu_ms))
        timing.spins += spins
        timing.spin_cpu_s += cpu_s
        timing.cpu += (time.perf_counter() - t0) * 1000

    def _extra_queries(self, recipe) -> tuple:
        """The recipe's queries: each a real server-side wait plus DB CPU (the data
        statements an endpoint needs go before them, on the same connection)."""
        return tuple((WAIT, {"io_ms": self._draw(recipe.io_ms), "db_cpu_ms": self._draw(recipe.db_cpu_ms)}, "none")
                     for _ in range(recipe.queries_per_request))

    def _after(self, recipe):
        """NoSQL calls the recipe adds beyond the endpoint's own, then background work."""
        bg = self._draw(recipe.background_ms) / 1000
        if bg > 0:
            yield Sleep(bg, deferred=recipe.background == "deferred")

    def _cached(self, recipe, key: str, build, timing: Timing):
        """Serve from the cache when the recipe allows it; otherwise build (a generator) and store."""
        cacheable = self.cache_on and recipe.cacheable
        if cacheable:
            hit = yield CacheGet(key)
            timing.cache_hit = hit is not None
            if hit is not None:
                return hit
        body = yield from build()
        if cacheable:
            yield CacheSet(key, body)
        return body

    # GET /indicators/{id}
    def indicator(self, raw_id: str, params: dict[str, str], timing: Timing):
        domain.no_query(params)
        indicator_id = domain.parse_indicator_id(raw_id)
        recipe = self.config.recipe("indicator")
        self._cpu(recipe, timing)

        def build():
            if recipe.queries_per_request == 0:  # no DB in the recipe: rows are a function of the id
                row = domain.indicator_row(indicator_id) if indicator_id <= domain.DATASET_ROWS else None
            else:
                results = yield Queries(((ONE, {"id": indicator_id}, "one"),) + self._extra_queries(recipe))
                row = results[0]
            if row is None:
                raise ApiError(404, "not_found", f"indicator {indicator_id} does not exist", "id")
            return domain.indicator_body(row)

        body = yield from self._cached(recipe, f"indicator:{indicator_id}", build, timing)
        yield from self._after(recipe)
        return Response(200, body)

    # GET /indicators?limit=&offset=
    def indicator_list(self, params: dict[str, str], timing: Timing):
        limit, offset = domain.parse_list(params)
        recipe = self.config.recipe("indicator_list")
        self._cpu(recipe, timing)

        def build():
            if recipe.queries_per_request == 0:
                ids = range(offset + 1, min(offset + limit, domain.DATASET_ROWS) + 1)
                rows = [domain.indicator_row(i) for i in ids]
            else:
                results = yield Queries(((PAGE, {"limit": limit, "offset": offset}, "all"),)
                                        + self._extra_queries(recipe))
                rows = results[0]
            return domain.list_body(rows, limit, offset)

        body = yield from self._cached(recipe, f"indicators:{limit}:{offset}", build, timing)
        yield from self._after(recipe)
        return Response(200, body)

    # GET /reports/summary?segment=
    def summary(self, params: dict[str, str], timing: Timing):
        key = domain.parse_summary(params)
        recipe = self.config.recipe("summary")
        self._cpu(recipe, timing)
        segment = key % domain.SEGMENTS

        def build():
            q = recipe.queries_per_request
            if q == 0:
                return domain.summary_body(key, [], [])
            # one aggregation, then q - 1 lookups of the top rows: the N+1 pattern
            statements = ((AGGREGATE, {"segment": segment}, "all"),) + tuple(
                (TOP, {"segment": segment, "rank": rank}, "one") for rank in range(q - 1))
            results = yield Queries(statements + self._extra_queries(recipe))
            kinds = [{"kind": r["kind"], "n": r["n"], "mean_score": round(float(r["mean_score"]), 4),
                      "max_severity": r["max_severity"]} for r in results[0]]
            return domain.summary_body(key, kinds, [r for r in results[1:q] if r is not None])

        body = yield from self._cached(recipe, f"summary:{key}", build, timing)
        yield from self._after(recipe)
        return Response(200, body)

    # GET /devices/{device_id}/events
    def events_read(self, raw_device: str, params: dict[str, str], timing: Timing):
        domain.no_query(params)
        device = domain.parse_device_id(raw_device)
        recipe = self.config.recipe("events_read")
        self._cpu(recipe, timing)
        if recipe.queries_per_request:
            yield Queries(self._extra_queries(recipe))
        items: list = []
        for _ in range(recipe.nosql_reads):
            items = (yield NoSql("/get", {"key": device}))["items"]
        for _ in range(recipe.nosql_writes):  # a recipe may add writes (an audit trail)
            yield NoSql("/put", {"key": f"audit:{device}", "item": {"id": domain.event_id(device, None)}})
        yield from self._after(recipe)
        return Response(200, domain.events_body(device, items))

    # POST /devices/{device_id}/events
    def events_write(self, raw_device: str, params: dict[str, str], body: bytes, content_type: str | None,
                     idempotency_key: str | None, timing: Timing):
        domain.no_query(params)
        device = domain.parse_device_id(raw_device)
        key = domain.parse_idempotency_key(idempotency_key)
        event = domain.parse_event(body, content_type)
        recipe = self.config.recipe("events_write")
        self._cpu(recipe, timing)
        if recipe.queries_per_request:
            yield Queries(self._extra_queries(recipe))
        for _ in range(recipe.nosql_reads):
            yield NoSql("/get", {"key": device})
        item = event.as_item(domain.event_id(device, key), device)
        status, headers = 201, {}
        for n in range(max(recipe.nosql_writes, 1)):
            result = yield NoSql("/put", {"key": device, "item": item, "if_absent": item["id"] if key else None})
            if n == 0 and result.get("__type", "").endswith("ConditionalCheckFailedException"):
                existing = result["item"]
                if {k: existing.get(k) for k in ("type", "severity", "payload")} != \
                        {"type": item["type"], "severity": item["severity"], "payload": item["payload"]}:
                    raise ApiError(409, "idempotency_key_reused", "this Idempotency-Key was used with a different "
                                   "event; send a new key for a new event", "Idempotency-Key")
                item, headers = existing, {"Idempotent-Replayed": "true"}
                break
        yield from self._after(recipe)
        return Response(status, domain.event_created_body(item), headers)

    # GET /health
    def health(self, params: dict[str, str], timing: Timing):
        domain.no_query(params)
        checks = {"db": (yield Ping("db")), "cache": (yield Ping("cache")) if self.cache_on else "off",
                  "nosql": (yield Ping("nosql"))}
        ok = all(v in ("ok", "off") for v in checks.values())
        return Response(200 if ok else 503, domain.dumps({"status": "ok" if ok else "degraded", "checks": checks}))
