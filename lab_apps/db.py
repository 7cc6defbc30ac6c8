"""The relational database: SQLAlchemy Core engines, the dataset, the injected work.

* SQLite by default (a file in LAB_DATA_DIR, shared by every worker);
  PostgreSQL when DATABASE_URL is set: psycopg for the sync engine (Flask,
  FastAPI ``def`` and async-blocking), asyncpg for the async engine.
* Each query of a recipe is a real server-side wait, ``lab_sleep(io_ms)``
  (``pg_sleep`` on PostgreSQL; a registered function on SQLite), plus
  ``lab_burn(db_cpu_ms)``, CPU spent by the database. SQLite runs inside the
  app process, so there that CPU lands on the API server: the model's
  calibration must know which backend a run used (``/config`` says).
* Pools: SQLAlchemy's QueuePool with the scenario's pool_size, max_overflow
  and pool_timeout; one pool per worker process, as in a real deployment.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import Engine, make_url

from . import cpu_work
from .domain import DATASET_ROWS, INDICATOR_COLUMNS, indicator_row

metadata = MetaData()
indicators = Table(
    "indicators", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("severity", Integer, nullable=False),
    Column("score", Float(precision=53), nullable=False),
    Column("segment", Integer, nullable=False, index=True),
    Column("first_seen", Text, nullable=False),
)

WAIT = text("SELECT lab_sleep(:io_ms) + lab_burn(:db_cpu_ms)")
ONE = text("SELECT id, value, kind, severity, score, segment, first_seen FROM indicators WHERE id = :id")
PAGE = text("SELECT id, value, kind, severity, score, segment, first_seen FROM indicators "
            "ORDER BY id LIMIT :limit OFFSET :offset")
AGGREGATE = text("SELECT kind, count(*) AS n, avg(score) AS mean_score, max(severity) AS max_severity "
                 "FROM indicators WHERE segment = :segment GROUP BY kind ORDER BY kind")
TOP = text("SELECT id, kind, severity FROM indicators WHERE segment = :segment "
           "ORDER BY severity DESC, id LIMIT 1 OFFSET :rank")

_PG_FUNCTIONS = """
CREATE OR REPLACE FUNCTION lab_sleep(ms double precision) RETURNS integer AS $$
BEGIN PERFORM pg_sleep(ms / 1000.0); RETURN 0; END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION lab_burn(ms double precision) RETURNS integer AS $$
DECLARE t0 timestamptz := clock_timestamp(); n integer := 0;
BEGIN
  WHILE extract(epoch FROM clock_timestamp() - t0) * 1000 < ms LOOP n := n + 1; END LOOP;
  RETURN 0;
END $$ LANGUAGE plpgsql;
"""


def kind(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


def sync_url(database_url: str) -> str:
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return str(url.set(drivername="postgresql+psycopg")) if kind(database_url) == "postgresql" \
        else str(url.set(drivername="sqlite"))


def async_url(database_url: str) -> str:
    url = make_url(database_url.replace("postgres://", "postgresql://", 1))
    return str(url.set(drivername="postgresql+asyncpg")) if kind(database_url) == "postgresql" \
        else str(url.set(drivername="sqlite+aiosqlite"))


def _sqlite_sleep(ms: float) -> int:
    time.sleep(max(ms, 0) / 1000)  # releases the GIL, like a real wait on a socket
    return 0


def _sqlite_burn(ms: float) -> int:
    cpu_work.burn(ms)
    return 0


def _register_sqlite_functions(dbapi_connection, _record) -> None:
    dbapi_connection.create_function("lab_sleep", 1, _sqlite_sleep)
    dbapi_connection.create_function("lab_burn", 1, _sqlite_burn)


def log_pool(engine: Engine) -> None:
    """When the launcher asks (LAB_POOL_LOG, a directory), log every DB connection this process's
    pool opens and closes, one line each: wall-clock time, "open" and the milliseconds from the
    driver's connect to the connection ready (the lab's SQLite functions registered), or "close".
    SQLAlchemy's QueuePool keeps at most pool_size idle, so under bursts it churns; the model's
    churn (model.CONNECTION_COST) is checked against this."""
    folder = os.environ.get("LAB_POOL_LOG")
    if not folder:
        return
    out = open(Path(folder) / f"pool-{os.getpid()}.log", "a", buffering=1)  # noqa: SIM115 - for the process's life
    started: dict[int, float] = {}  # by the pool's record of the connection: opens overlap on an event loop

    def before(_dialect, record, _cargs, _cparams):  # DialectEvents.do_connect: None lets the driver connect
        started[id(record)] = time.perf_counter()

    def ready(_dbapi_connection, record) -> None:  # PoolEvents.connect, after the lab's functions are registered
        t0 = started.pop(id(record), None)
        out.write(f"{time.time():.6f} open {(time.perf_counter() - t0) * 1000 if t0 else float('nan'):.4f}\n")

    def closed(_dbapi_connection, _record) -> None:  # PoolEvents.close
        out.write(f"{time.time():.6f} close\n")

    event.listen(engine, "do_connect", before)
    event.listen(engine, "connect", ready)
    event.listen(engine, "close", closed)


def pool_args(pool_size: int, max_overflow: int, pool_timeout_s: float) -> dict:
    return {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout_s,
            "pool_pre_ping": False}


def sync_engine(database_url: str, *, pool_size: int, max_overflow: int, pool_timeout_s: float) -> Engine:
    from sqlalchemy.pool import QueuePool

    args = pool_args(pool_size, max_overflow, pool_timeout_s)
    if kind(database_url) == "sqlite":
        engine = create_engine(sync_url(database_url), poolclass=QueuePool,
                               connect_args={"check_same_thread": False, "timeout": 30}, **args)
        event.listen(engine, "connect", _register_sqlite_functions)
    else:
        engine = create_engine(sync_url(database_url), **args)
    log_pool(engine)
    return engine


def async_engine(database_url: str, *, pool_size: int, max_overflow: int, pool_timeout_s: float):
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import AsyncAdaptedQueuePool

    args = pool_args(pool_size, max_overflow, pool_timeout_s)
    if kind(database_url) == "sqlite":
        engine = create_async_engine(async_url(database_url), poolclass=AsyncAdaptedQueuePool,
                                     connect_args={"check_same_thread": False, "timeout": 30}, **args)
        event.listen(engine.sync_engine, "connect", _register_sqlite_functions)
    else:
        engine = create_async_engine(async_url(database_url), **args)
    log_pool(engine.sync_engine)
    return engine


@contextlib.contextmanager
def _dataset_lock(database_url: str, engine: Engine):
    """One process builds the dataset; the others wait, then find it built."""
    if kind(database_url) == "sqlite":
        path = Path(make_url(database_url).database or "lab.db")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(str(path) + ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
    else:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(424242)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(424242)"))


def ensure_dataset(database_url: str) -> int:
    """Create the indicators table and its DATASET_ROWS rows if missing; returns the row count."""
    engine = sync_engine(database_url, pool_size=1, max_overflow=1, pool_timeout_s=60)
    try:
        with _dataset_lock(database_url, engine):
            metadata.create_all(engine)
            with engine.begin() as conn:
                if kind(database_url) == "postgresql":
                    conn.execute(text(_PG_FUNCTIONS))
                count = conn.execute(select(func.count()).select_from(indicators)).scalar_one()
                if count != DATASET_ROWS:
                    conn.execute(indicators.delete())
                    for start in range(1, DATASET_ROWS + 1, 5000):
                        conn.execute(indicators.insert(), [indicator_row(i) for i in
                                                           range(start, min(start + 5000, DATASET_ROWS + 1))])
                    count = DATASET_ROWS
        return count
    finally:
        engine.dispose()


def row_dict(row) -> dict:
    return {name: row._mapping[name] for name in INDICATOR_COLUMNS}


def aggregate_dicts(rows) -> list[dict]:
    return [{"kind": r.kind, "n": r.n, "mean_score": round(float(r.mean_score), 4), "max_severity": r.max_severity}
            for r in rows]
