"""The model's backends: a TTL cache, a token bucket, and Zipf key popularity."""

from __future__ import annotations

import numpy as np

__all__ = ["TtlCache", "TokenBucket", "ZipfKeys", "zipf_probabilities", "ttl_hit_ratio"]


class TtlCache:
    """A key-value cache whose entries expire ``ttl_s`` after they were written.

    Matches what the lab apps do: look up, and on a miss read the DB and write
    the entry with an expiry (Redis ``SET key value EX ttl``); a hit does not
    extend the entry. Unbounded: the memory check in Scenario covers size.
    """

    __slots__ = ("ttl_s", "_expiry", "hits", "misses")

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._expiry: dict[int, float] = {}
        self.hits = 0
        self.misses = 0

    def lookup(self, key: int, now: float) -> bool:
        if self._expiry.get(key, -1.0) > now:
            self.hits += 1
            return True
        self.misses += 1
        return False

    def store(self, key: int, now: float) -> None:
        self._expiry[key] = now + self.ttl_s


class TokenBucket:
    """Provisioned capacity: ``rate`` units per second, up to ``burst_s`` seconds saved.

    DynamoDB-style: unused capacity accumulates for up to 300 s and is spent
    on bursts; past it a call is throttled (ProvisionedThroughputExceeded).
    The bucket always holds at least one second of capacity, so a steady load
    at the provisioned rate is never throttled by rounding.
    """

    __slots__ = ("rate", "capacity", "level", "_t", "taken", "throttled")

    def __init__(self, rate: float, burst_s: float, start_burst_s: float = 0.0, now: float = 0.0) -> None:
        self.rate = rate
        self.capacity = rate * max(burst_s, 1.0)
        self.level = min(self.capacity, rate * max(start_burst_s, 1.0))
        self._t = now
        self.taken = 0
        self.throttled = 0

    def take(self, now: float) -> bool:
        level = self.level + (now - self._t) * self.rate
        self.level = level if level < self.capacity else self.capacity
        self._t = now
        if self.level >= 1.0:
            self.level -= 1.0
            self.taken += 1
            return True
        self.throttled += 1
        return False


def zipf_probabilities(key_count: int, alpha: float) -> np.ndarray:
    """P(key of rank k) proportional to 1 / k**alpha, k = 1..key_count."""
    weights = 1.0 / np.arange(1, key_count + 1, dtype=float) ** alpha
    return weights / weights.sum()


class ZipfKeys:
    """Draws key ids 0..key_count-1, id 0 the most popular."""

    __slots__ = ("_cdf", "_rng", "_buf", "_i")

    def __init__(self, key_count: int, alpha: float, rng: np.random.Generator) -> None:
        self._cdf = np.cumsum(zipf_probabilities(key_count, alpha))
        self._cdf[-1] = 1.0
        self._rng = rng
        self._buf: list[int] = []
        self._i = 0

    def __call__(self) -> int:
        i = self._i
        if i >= len(self._buf):
            u = self._rng.random(4096)
            self._buf = np.searchsorted(self._cdf, u, side="right").tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]


def ttl_hit_ratio(rate_rps: float, ttl_s: float, key_count: int, alpha: float, caches: int = 1) -> float:
    """Long-run hit ratio of TTL caches under Poisson requests with Zipf keys.

    A miss writes the key; it then serves every request for ``ttl_s``. For key
    k with request rate ``r_k`` at one cache, a cycle holds one miss and on
    average ``r_k * ttl_s`` hits, so its hit ratio is ``r_k T / (1 + r_k T)``
    (exact for Poisson arrivals; it is the Che approximation with the TTL as
    the characteristic time). ``caches`` per-process caches each see
    ``1 / caches`` of the traffic.
    """
    p = zipf_probabilities(key_count, alpha)
    rt = p * rate_rps / caches * ttl_s
    return float(np.sum(p * rt / (1.0 + rt)))
