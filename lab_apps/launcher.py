"""Start and stop the lab apps: ``with serve("flask", scenario) as server: ...``.

* Flask runs under gunicorn (sync or gthread workers), FastAPI under uvicorn,
  both bound to 127.0.0.1, on a free port unless one is given.
* The NoSQL capacity service starts beside them when no LAB_NOSQL_URL is
  given (one uvicorn process: its token buckets are shared by all workers).
* Each server is its own process group. Stopping sends SIGTERM to the group,
  then SIGKILL to what is left: no orphans. The children also ask Linux for
  SIGTERM should their parent die (PR_SET_PDEATHSIG), so a killed notebook
  kernel does not leave servers behind.
* ``cpus``: pin the app to these CPUs (Linux affinity), inherited by its
  workers and reported by /config, so the load generator can have the rest.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from simulator.scenario import Scenario

from . import db
from .config import default_data_dir

APPS = {"flask": ("sync", "threads"), "fastapi": ("async", "threadpool", "async-blocking")}
_RUNNING: set[subprocess.Popen] = set()


class LaunchError(RuntimeError):
    """A server did not come up; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_for(model: str) -> str:
    for app, models in APPS.items():
        if model in models:
            return app
    raise ValueError(f"unknown server model {model!r}")


def _child_setup(cpus: tuple[int, ...] | None):
    def setup() -> None:  # runs in the child between fork and exec
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if cpus:
            os.sched_setaffinity(0, cpus)
    return setup


def stop_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group, wait, SIGKILL what is left; reap the leader.

    The leader is always reaped before returning: an unreaped child is a zombie
    that keeps its group "alive" and makes ``Popen.__del__`` warn.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    # The group is gone only when its last member is: workers still exiting, or
    # left behind by a master that died, get SIGKILL until none answers.
    deadline = time.monotonic() + 10
    while group_alive(process.pid) and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.poll()  # reap the leader once it has died, so the group can empty
        time.sleep(0.05)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    _RUNNING.discard(process)


def cpus_busy_seconds(cpus: list[int] | None) -> tuple[float, float]:
    """(busy, elapsed) seconds so far of these CPUs, summed, from /proc/stat; (0, 0) elsewhere.

    Busy is everything that ran there (user, nice, system, irq, softirq, steal): the app, the
    kernel's work for it, and any other process. Beside the app's own CPU it tells how much
    of its cores the app really had. ``None``: every CPU."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    wanted = None if cpus is None else {f"cpu{c}" for c in cpus}
    busy = elapsed = 0
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return 0.0, 0.0
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or (wanted is not None and name not in wanted):
            continue
        user, nice, system, idle, iowait, irq, softirq, steal = (int(f) for f in fields[:8])
        busy += user + nice + system + irq + softirq + steal
        elapsed += user + nice + system + idle + iowait + irq + softirq + steal
    return busy / ticks, elapsed / ticks


def group_context_switches(pgid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches so far of every live thread in group ``pgid``.

    Voluntary: a thread blocked (a sleep, a socket, a lock). Involuntary: the scheduler took
    the core from a thread that could have run on (a preemption; on an event loop, mostly the
    GIL handed between the loop and a driver's thread)."""
    voluntary = involuntary = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            for thread in (entry / "task").iterdir():
                for line in (thread / "status").read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        involuntary += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return voluntary, involuntary


def group_cpu_seconds(pgid: int) -> float:
    """CPU time used so far by every live process in group ``pgid`` (Linux /proc; 0 elsewhere).

    Per process, the larger of two clocks: the sum of its live threads' ``schedstat`` run
    time, in nanoseconds, and its utime + stime, in 10 ms ticks, rounded down but
    counting threads that have exited. With no thread gone the first is exact. Ticks
    alone, over five processes, made a 1 s sample of an idle app's CPU uncertain by
    several per cent of a core: half a millisecond per request at 20 req/s.
    """
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:  # fields after the command: state ppid pgrp ... utime(11) stime(12)
                continue
            coarse = (int(fields[11]) + int(fields[12])) / ticks
        except (OSError, IndexError, ValueError):
            continue
        try:
            live = sum(int((t / "schedstat").read_text().split()[0]) for t in (entry / "task").iterdir()) / 1e9
        except (OSError, IndexError, ValueError):  # no schedstat here, or a thread gone meanwhile
            live = 0.0
        total += max(live, coarse)
    return total


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@atexit.register
def _stop_all() -> None:
    for process in list(_RUNNING):
        stop_group(process, grace_s=3.0)


def _start(cmd: list[str], env: dict[str, str], log: Path, cpus: tuple[int, ...] | None) -> subprocess.Popen:
    with open(log, "wb") as out:
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True, preexec_fn=_child_setup(cpus))
    _RUNNING.add(process)
    return process


def _wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            r = httpx.get(url, timeout=2.0)
            if r.status_code == 200:
                return
            last = f"HTTP {r.status_code}: {r.text[:200]}"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    stop_group(process)
    state = f"exited with {process.returncode}" if process.returncode is not None else f"not healthy ({last})"
    raise LaunchError(f"{' '.join(process.args[:4])}... {state} within {timeout_s:g} s; its log ends:\n{tail}")


def _start_nosql(env: dict[str, str], workdir: Path, timeout_s: float) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = _start([sys.executable, "-m", "uvicorn", "--factory", "lab_apps.nosql_service:create_app",
                      "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"],
                     env, workdir / "nosql.log", None)
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(f"{url}/health", process, workdir / "nosql.log", timeout_s)
    return process, url


@contextlib.contextmanager
def nosql_service(scenario: Scenario, timeout_s: float = 30.0):
    """The NoSQL capacity service alone, with the scenario's capacity: yields its URL."""
    workdir = Path(tempfile.mkdtemp(prefix="latency-lab-nosql-"))
    (workdir / "scenario.toml").write_text(scenario.to_toml())
    process, url = _start_nosql({**os.environ, "LAB_SCENARIO": str(workdir / "scenario.toml")}, workdir, timeout_s)
    try:
        yield url
    finally:
        stop_group(process)


@dataclass
class Server:
    """A running lab app (and its NoSQL service, if the launcher started one)."""

    app: str
    scenario: Scenario
    url: str
    nosql_url: str
    process: subprocess.Popen
    nosql: subprocess.Popen | None
    workdir: Path
    cpus: tuple[int, ...] | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def pgids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def config(self) -> dict:
        return httpx.get(f"{self.url}/config", timeout=10).json()

    def gc_collections(self, since: float, until: float, *, origin: float | None = None) -> dict[str, list]:
        """The app's garbage collections that ended between two wall-clock times, all its
        processes together: {"gen0": [collections, pause ms in all], "gen1": ..., "gen2": ...}.
        With ``origin`` (a wall-clock time), also "full": each full (generation-2) collection
        since the process started, [seconds after ``origin`` it ended, pause ms, process id],
        by time: when they come and what each costs, for the model's fit."""
        out: dict[str, list] = {f"gen{g}": [0, 0.0] for g in range(3)}
        full = []
        for log in (self.workdir / "gc").glob("gc-*.log"):
            pid = int(log.stem.split("-")[1])
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) != 3:
                    continue  # a line the process was writing as it stopped
                ended, generation, pause_ms = float(parts[0]), parts[1], float(parts[2])
                if since <= ended <= until:
                    out[f"gen{generation}"][0] += 1
                    out[f"gen{generation}"][1] += pause_ms
                if generation == "2" and origin is not None:
                    full.append([round(ended - origin, 6), pause_ms, pid])
        if origin is not None:
            out["full"] = sorted(full)
        return out

    def pool_events(self, since: float, until: float) -> tuple[list[float], int]:
        """The DB connections the app's pools opened and closed between two wall-clock times, all its
        processes together (lab_apps.db.log_pool): (each open's milliseconds, NaN where its start
        went unseen; the number closed)."""
        opened, closed = [], 0
        for log in (self.workdir / "pool").glob("pool-*.log"):
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) < 2 or not since <= float(parts[0]) <= until:
                    continue
                if parts[1] == "open" and len(parts) == 3:
                    opened.append(float(parts[2]))
                elif parts[1] == "close":
                    closed += 1
        return opened, closed

    def cpu_seconds(self) -> float:
        """CPU time used so far by the app's processes (its whole group), from /proc."""
        return group_cpu_seconds(self.process.pid)

    def context_switches(self) -> tuple[int, int]:
        """(voluntary, involuntary) context switches so far of the app's threads, from /proc."""
        return group_context_switches(self.process.pid)

    def stop(self) -> None:
        for process in self.processes:
            stop_group(process)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start(app: str, scenario: Scenario, *, port: int | None = None, cpus: tuple[int, ...] | list[int] | None = None,
          database_url: str | None = None, redis_url: str | None = None, nosql_url: str | None = None,
          timeout_s: float = 60.0, root_path: str = "") -> Server:
    """Start ``app`` ("flask" or "fastapi") serving ``scenario``; return once /health answers 200.

    ``root_path``: the prefix a reverse proxy (jupyter-server-proxy on Binder) serves the app
    under and strips; FastAPI needs it so /docs fetches the schema through the proxy.
    """
    if app not in APPS:
        raise ValueError(f"app must be flask or fastapi, got {app!r}")
    model = scenario.server.model
    if model not in APPS[app]:
        raise ValueError(f"{app} runs server models {', '.join(APPS[app])}; for {model!r} use {app_for(model)}")
    scenario.check()
    cpus = tuple(sorted(cpus)) if cpus else None
    if cpus and hasattr(os, "sched_getaffinity") and not set(cpus) <= os.sched_getaffinity(0):
        raise ValueError(f"cpus {list(cpus)} are not all available; this process may use "
                         f"{sorted(os.sched_getaffinity(0))}")
    workdir = Path(tempfile.mkdtemp(prefix=f"latency-lab-{app}-"))
    (workdir / "scenario.toml").write_text(scenario.to_toml())
    data_dir = default_data_dir()
    if scenario.backends.database == "postgresql":
        database_url = database_url or os.environ.get("DATABASE_URL")
        if not database_url or db.kind(database_url) != "postgresql":
            raise ValueError("database = 'postgresql' needs a PostgreSQL URL: pass database_url= or set "
                             f"DATABASE_URL (got {database_url!r})")
    else:
        if database_url and db.kind(database_url) != "sqlite":
            raise ValueError(f"the scenario says database = 'sqlite' but database_url is {database_url}; "
                             "set the knob database = 'postgresql' to use it")
        database_url = database_url or f"sqlite:///{data_dir / 'lab.db'}"
    redis_url = redis_url or os.environ.get("REDIS_URL")
    if scenario.backends.cache == "redis" and not redis_url:
        raise ValueError("cache = 'redis' needs a Redis: pass redis_url= or set REDIS_URL")
    try:
        db.ensure_dataset(database_url)
    except Exception as exc:  # a bad URL, a DB that is down, no permission: say which
        raise LaunchError(f"cannot prepare the database at {database_url}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    env = {**os.environ, "LAB_SCENARIO": str(workdir / "scenario.toml"), "DATABASE_URL": database_url,
           "LAB_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1", "LAB_GC_LOG": str(workdir / "gc"),
           "LAB_POOL_LOG": str(workdir / "pool")}
    (workdir / "gc").mkdir()
    (workdir / "pool").mkdir()
    if redis_url:
        env["REDIS_URL"] = redis_url
    processes = []
    nosql = None
    try:
        if nosql_url is None:
            nosql, nosql_url = _start_nosql(env, workdir, timeout_s)
            processes.append(nosql)
        env["LAB_NOSQL_URL"] = nosql_url
        port = port or free_port()
        s = scenario.server
        if app == "flask":
            cmd = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(s.workers),
                   "--worker-class", "gthread" if model == "threads" else "sync", "--threads", str(s.threads),
                   "--backlog", str(s.backlog), "--graceful-timeout", "5", "--log-level", "warning",
                   "lab_apps.flask_app:create_app()"]
        else:
            cmd = [sys.executable, "-m", "uvicorn", "--factory", "lab_apps.fastapi_app:create_app",
                   "--host", "127.0.0.1", "--port", str(port), "--workers", str(s.workers),
                   "--backlog", str(s.backlog), "--log-level", "warning", "--no-access-log",
                   "--timeout-graceful-shutdown", "5"]
            if s.limit_concurrency is not None:
                cmd += ["--limit-concurrency", str(s.limit_concurrency)]
            if root_path:
                cmd += ["--root-path", root_path.rstrip("/")]
        process = _start(cmd, env, workdir / f"{app}.log", cpus)
        processes.insert(0, process)
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(f"{url}/health", process, workdir / f"{app}.log", timeout_s)
    except BaseException:
        for p in processes:
            stop_group(p)
        raise
    return Server(app=app, scenario=scenario, url=url, nosql_url=nosql_url, process=process, nosql=nosql,
                  workdir=workdir, cpus=cpus, processes=processes)


@contextlib.contextmanager
def serve(app: str, scenario: Scenario, **kwargs):
    """``with serve("fastapi", scenario) as server: httpx.get(server.url + "/health")``."""
    server = start(app, scenario, **kwargs)
    try:
        yield server
    finally:
        server.stop()
