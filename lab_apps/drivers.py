"""Drivers: perform the steps a recipe yields, blocking or awaiting.

``SyncDriver``: SQLAlchemy's sync engine (psycopg / sqlite3), redis-py,
``httpx.Client``, ``time.sleep``. Flask uses it in its workers' threads;
FastAPI uses it in ``def`` endpoints (anyio's threadpool) and, wrongly, in
``async def`` endpoints for the async-blocking lesson.

``AsyncDriver``: SQLAlchemy's async engine (asyncpg / aiosqlite),
redis.asyncio, ``httpx.AsyncClient``, ``asyncio.sleep``.

Both create their clients lazily, in the worker process that uses them
(never in a parent before fork), and time each phase for Server-Timing.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from sqlalchemy.exc import TimeoutError as PoolTimeout

from . import db
from .cache import AsyncLocalCache, AsyncRedisCache, LocalCache, RedisCache
from .domain import ApiError
from .recipe import CacheGet, CacheSet, NoSql, Ping, Queries, Response, Sleep, Timing

THROTTLED = "ProvisionedThroughputExceededException"
CONDITION_FAILED = "ConditionalCheckFailedException"


def _rows(result, shape: str):
    if shape == "one":
        row = result.first()
        return dict(row._mapping) if row is not None else None
    if shape == "all":
        return [dict(r._mapping) for r in result]
    return None


def _pool_timeout(config) -> ApiError:
    return ApiError(503, "db_pool_timeout", f"no database connection free within pool_timeout_s="
                    f"{config.scenario.backends.pool_timeout_s:g} (pool_size {config.scenario.backends.pool_size}"
                    f" + max_overflow {config.scenario.backends.max_overflow})")


def _nosql_outcome(config, response: httpx.Response, attempt: int) -> tuple[str, Any]:
    """("ok", doc), ("retry", backoff seconds) or raise ApiError: botocore's legacy retry rule."""
    try:
        doc = response.json()
    except ValueError:
        doc = {}
    if response.status_code == 200:
        return "ok", doc
    kind = str(doc.get("__type", ""))
    if kind.endswith(CONDITION_FAILED):
        return "ok", doc
    if kind.endswith(THROTTLED):
        b = config.scenario.backends
        if attempt < b.nosql_max_attempts:
            # botocore legacy: base * growth_factor ** (attempts - 1); DynamoDB: 50 ms, x2, 10 attempts
            return "retry", b.nosql_backoff_base_ms * b.nosql_backoff_factor ** (attempt - 1) / 1000
        raise ApiError(503, "nosql_throttled", f"the NoSQL store throttled all {attempt} attempts "
                       f"(ProvisionedThroughputExceeded)")
    raise ApiError(502, "nosql_error", f"the NoSQL store answered {response.status_code}: {kind or 'no error type'}")


def _nosql_unreachable(exc: Exception) -> ApiError:
    return ApiError(503, "nosql_unavailable", f"the NoSQL store did not answer: {type(exc).__name__}")


def _limits(config) -> httpx.Limits:
    n = config.scenario.backends.nosql_max_connections
    return httpx.Limits(max_connections=n, max_keepalive_connections=n)


class SyncDriver:
    def __init__(self, config) -> None:
        self.config = config
        self._engine = None
        self._nosql: httpx.Client | None = None
        b = config.scenario.backends
        self.cache = (LocalCache(b.ttl_s) if b.cache == "local" else
                      RedisCache(config.redis_url, b.ttl_s) if b.cache == "redis" else None)

    @property
    def engine(self):
        if self._engine is None:
            b = self.config.scenario.backends
            self._engine = db.sync_engine(self.config.database_url, pool_size=b.pool_size,
                                          max_overflow=b.max_overflow, pool_timeout_s=b.pool_timeout_s)
        return self._engine

    @property
    def nosql(self) -> httpx.Client:
        if self._nosql is None:
            self._nosql = httpx.Client(base_url=self.config.nosql_url, limits=_limits(self.config), timeout=30.0)
        return self._nosql

    def close(self) -> None:
        """Close the pool, the NoSQL client and the Redis client (at process exit, or in tests)."""
        if self._engine is not None:
            self._engine.dispose()
        if self._nosql is not None:
            self._nosql.close()
        if isinstance(self.cache, RedisCache):
            self.cache.client.close()

    def run(self, handler, timing: Timing) -> Response:
        t0 = time.perf_counter()
        value = None
        try:
            while True:
                value = self.perform(handler.send(value), timing)
        except StopIteration as done:
            return done.value
        finally:
            handler.close()
            timing.app = (time.perf_counter() - t0) * 1000

    def perform(self, step, timing: Timing):
        t0 = time.perf_counter()
        if isinstance(step, CacheGet):
            value = self.cache.get(step.key)
            timing.cache += (time.perf_counter() - t0) * 1000
            return value
        if isinstance(step, CacheSet):
            self.cache.set(step.key, step.value)
            timing.cache += (time.perf_counter() - t0) * 1000
            return None
        if isinstance(step, Queries):
            try:
                conn = self.engine.connect()
            except PoolTimeout:
                raise _pool_timeout(self.config) from None
            t1 = time.perf_counter()
            timing.pool += (t1 - t0) * 1000
            try:
                return [_rows(conn.execute(stmt, params), shape) for stmt, params, shape in step.statements]
            finally:
                conn.close()
                timing.db += (time.perf_counter() - t1) * 1000
        if isinstance(step, NoSql):
            try:
                for attempt in range(1, self.config.scenario.backends.nosql_max_attempts + 1):
                    outcome, value = _nosql_outcome(self.config, self.nosql.post(step.path, json=step.doc), attempt)
                    if outcome == "ok":
                        return value
                    timing.throttles += 1
                    time.sleep(value)
            except httpx.HTTPError as exc:
                raise _nosql_unreachable(exc) from None
            finally:
                timing.nosql += (time.perf_counter() - t0) * 1000
        if isinstance(step, Sleep):
            if step.deferred:
                timing.deferred.append(step.seconds)
            else:
                time.sleep(step.seconds)
            return None
        if isinstance(step, Ping):
            return self.ping(step.what)
        raise TypeError(f"unknown step {step!r}")

    def ping(self, what: str) -> str:
        try:
            if what == "db":
                with self.engine.connect() as conn:
                    conn.execute(db.text("SELECT 1"))
            elif what == "cache":
                self.cache.ping()
            else:
                self.nosql.get("/health").raise_for_status()
            return "ok"
        except Exception as exc:  # a health check reports, it does not raise
            return f"error: {type(exc).__name__}"


class AsyncDriver:
    def __init__(self, config) -> None:
        self.config = config
        self._engine = None
        self._nosql: httpx.AsyncClient | None = None
        b = config.scenario.backends
        self.cache = (AsyncLocalCache(b.ttl_s) if b.cache == "local" else
                      AsyncRedisCache(config.redis_url, b.ttl_s) if b.cache == "redis" else None)

    @property
    def engine(self):
        if self._engine is None:
            b = self.config.scenario.backends
            self._engine = db.async_engine(self.config.database_url, pool_size=b.pool_size,
                                           max_overflow=b.max_overflow, pool_timeout_s=b.pool_timeout_s)
        return self._engine

    @property
    def nosql(self) -> httpx.AsyncClient:
        if self._nosql is None:
            self._nosql = httpx.AsyncClient(base_url=self.config.nosql_url, limits=_limits(self.config),
                                            timeout=30.0)
        return self._nosql

    async def aclose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
        if self._nosql is not None:
            await self._nosql.aclose()
        if isinstance(self.cache, AsyncRedisCache):
            await self.cache.client.aclose()

    async def run(self, handler, timing: Timing) -> Response:
        t0 = time.perf_counter()
        value = None
        try:
            while True:
                value = await self.perform(handler.send(value), timing)
        except StopIteration as done:
            return done.value
        finally:
            handler.close()
            timing.app = (time.perf_counter() - t0) * 1000

    async def perform(self, step, timing: Timing):
        t0 = time.perf_counter()
        if isinstance(step, CacheGet):
            value = await self.cache.get(step.key)
            timing.cache += (time.perf_counter() - t0) * 1000
            return value
        if isinstance(step, CacheSet):
            await self.cache.set(step.key, step.value)
            timing.cache += (time.perf_counter() - t0) * 1000
            return None
        if isinstance(step, Queries):
            try:
                conn = await self.engine.connect()
            except PoolTimeout:
                raise _pool_timeout(self.config) from None
            t1 = time.perf_counter()
            timing.pool += (t1 - t0) * 1000
            try:
                return [_rows(await conn.execute(stmt, params), shape) for stmt, params, shape in step.statements]
            finally:
                await conn.close()
                timing.db += (time.perf_counter() - t1) * 1000
        if isinstance(step, NoSql):
            try:
                for attempt in range(1, self.config.scenario.backends.nosql_max_attempts + 1):
                    response = await self.nosql.post(step.path, json=step.doc)
                    outcome, value = _nosql_outcome(self.config, response, attempt)
                    if outcome == "ok":
                        return value
                    timing.throttles += 1
                    await asyncio.sleep(value)
            except httpx.HTTPError as exc:
                raise _nosql_unreachable(exc) from None
            finally:
                timing.nosql += (time.perf_counter() - t0) * 1000
        if isinstance(step, Sleep):
            if step.deferred:
                timing.deferred.append(step.seconds)
            else:
                await asyncio.sleep(step.seconds)
            return None
        if isinstance(step, Ping):
            return await self.ping(step.what)
        raise TypeError(f"unknown step {step!r}")

    async def ping(self, what: str) -> str:
        try:
            if what == "db":
                async with self.engine.connect() as conn:
                    await conn.execute(db.text("SELECT 1"))
            elif what == "cache":
                await self.cache.ping()
            else:
                (await self.nosql.get("/health")).raise_for_status()
            return "ok"
        except Exception as exc:  # a health check reports, it does not raise
            return f"error: {type(exc).__name__}"
