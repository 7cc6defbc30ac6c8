"""Notebook 04's arithmetic: hit ratios of per-process and shared caches, and stale reads.

A TTL cache stores a value on a miss and serves it for ``ttl_s``. With Poisson
reads of one key at rate r, each cycle is one miss, then a valid window of
``ttl_s``, then a wait of mean 1/r for the next read (simulator.backends
explains the hit ratio r T / (1 + r T)).
"""

from __future__ import annotations

import numpy as np

from simulator.backends import TtlCache, ttl_hit_ratio


def hit_ratios(rate_rps: float, ttl_s: float, key_count: int, zipf_alpha: float, workers: int) -> dict[str, float]:
    """Long-run hit ratio with no cache, one cache per worker process, and one shared cache."""
    return {"off": 0.0,
            "local": ttl_hit_ratio(rate_rps, ttl_s, key_count, zipf_alpha, caches=workers),
            "redis": ttl_hit_ratio(rate_rps, ttl_s, key_count, zipf_alpha, caches=1)}


def stale_read_probability(rate_rps: float, ttl_s: float, since_update_s) -> np.ndarray:
    """P(a read of one key, ``since_update_s`` after the key changed, returns the old value).

    At a random instant the key is cached with probability r T / (1 + r T)
    (the share of a cycle that is a valid window); given that, the window's
    remaining life is uniform on (0, T). So the read is stale with probability
    r T / (1 + r T) x (1 - s / T) for 0 <= s <= T, and never after T: the TTL
    bounds staleness.
    """
    s = np.asarray(since_update_s, dtype=float)
    cached = rate_rps * ttl_s / (1.0 + rate_rps * ttl_s)
    return np.where(s < ttl_s, cached * (1.0 - np.clip(s, 0, None) / ttl_s), 0.0)


def stale_read_share_simulated(rate_rps: float, ttl_s: float, since_update_s: float, *, trials: int = 4000,
                               seed: int = 0) -> float:
    """The same probability by brute force, with the model's own TtlCache: the cross-check."""
    rng = np.random.default_rng(seed)
    stale = 0
    for _ in range(trials):
        cache = TtlCache(ttl_s)
        update = ttl_s + 20.0 / rate_rps + rng.exponential(ttl_s)  # long after the start: the cache is warm
        read_at = update + since_update_s
        t, stored_at = 0.0, 0.0
        while True:
            t += rng.exponential(1.0 / rate_rps)
            judged = t >= read_at
            if judged:
                t = read_at  # the read we judge happens exactly since_update_s after the update
            if cache.lookup(0, t):
                if judged:
                    stale += stored_at < update
                    break
            else:
                cache.store(0, t)
                stored_at = t
                if judged:
                    break
    return stale / trials
