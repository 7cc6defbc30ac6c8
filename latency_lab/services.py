"""Find the optional backends (PostgreSQL, Redis) a notebook can use, or say why not.

The lab's defaults (SQLite, an in-process cache) need neither. Where one is
missing, a notebook falls back to the embedded default and prints the reason;
``LAB_REQUIRE_SERVICES=1`` (CI) turns that fallback into an error, so the real
paths are exercised wherever they are promised.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/1"  # database 1: leaves a developer's database 0 alone


class ServiceMissing(RuntimeError):
    """A service the run needs is not reachable, and LAB_REQUIRE_SERVICES=1 forbids falling back."""


@dataclass(frozen=True)
class Found:
    name: str
    url: str | None  # None: not reachable
    reason: str = ""

    def __bool__(self) -> bool:
        return self.url is not None

    def line(self) -> str:
        return f"{self.name}: {self.url}" if self.url else f"{self.name}: not available ({self.reason})"


def _required() -> bool:
    return os.environ.get("LAB_REQUIRE_SERVICES") == "1"


def _missing(name: str, url: str, exc: Exception) -> Found:
    reason = f"{url}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    if _required():
        raise ServiceMissing(f"{name} is not reachable at {reason}; LAB_REQUIRE_SERVICES=1 forbids the fallback")
    return Found(name, None, reason)


def postgres() -> Found:
    """PostgreSQL at ``DATABASE_URL`` (when it is one) or the local default, with the lab's dataset in it."""
    from lab_apps import db

    url = os.environ.get("DATABASE_URL", "")
    url = url if url.startswith("postgresql") else os.environ.get("LAB_POSTGRES_URL", DEFAULT_POSTGRES)
    try:
        db.ensure_dataset(url)
    except Exception as exc:  # down, refused, no such database: the reason is printed
        return _missing("PostgreSQL", url, exc)
    return Found("PostgreSQL", url)


def redis() -> Found:
    """Redis at ``REDIS_URL`` or the local default, answering PING."""
    import redis as redis_py

    url = os.environ.get("REDIS_URL") or DEFAULT_REDIS
    try:
        client = redis_py.Redis.from_url(url, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return _missing("Redis", url, exc)
    return Found("Redis", url)
