"""Response caches: off, local (one dict per process), or redis (one shared store).

Both follow the model's rule (simulator/backends.py): look up; on a miss,
compute and write with an expiry of ttl_s (Redis ``SET key value EX ttl``);
a hit does not extend the entry.
"""

from __future__ import annotations

import threading
import time


class LocalCache:
    """A per-process TTL cache; safe for gthread workers' threads."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._data: dict[str, tuple[float, bytes]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def set(self, key: str, value: bytes) -> None:
        with self._lock:
            self._data[key] = (time.monotonic() + self.ttl_s, value)

    def ping(self) -> bool:
        return True


class RedisCache:
    """Shared by every worker: redis-py's blocking client."""

    def __init__(self, url: str, ttl_s: float) -> None:
        import redis

        self.ttl_ms = int(round(ttl_s * 1000))
        self.client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    def get(self, key: str) -> bytes | None:
        return self.client.get(key)

    def set(self, key: str, value: bytes) -> None:
        self.client.set(key, value, px=self.ttl_ms)

    def ping(self) -> bool:
        return bool(self.client.ping())


class AsyncRedisCache:
    """Shared by every worker: redis-py's asyncio client."""

    def __init__(self, url: str, ttl_s: float) -> None:
        import redis.asyncio

        self.ttl_ms = int(round(ttl_s * 1000))
        self.client = redis.asyncio.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)

    async def get(self, key: str) -> bytes | None:
        return await self.client.get(key)

    async def set(self, key: str, value: bytes) -> None:
        await self.client.set(key, value, px=self.ttl_ms)

    async def ping(self) -> bool:
        return bool(await self.client.ping())


class AsyncLocalCache(LocalCache):
    """The local cache behind an async interface (no I/O: nothing to await)."""

    async def get(self, key: str) -> bytes | None:  # type: ignore[override]
        return LocalCache.get(self, key)

    async def set(self, key: str, value: bytes) -> None:  # type: ignore[override]
        LocalCache.set(self, key, value)

    async def ping(self) -> bool:  # type: ignore[override]
        return True
