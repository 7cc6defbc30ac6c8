"""The load generator: the scenario's traffic against a real server, measured honestly.

* Open loop (Poisson or constant): each request has a scheduled send time,
  drawn exactly as the model draws it (simulator.traffic). Latency is taken
  from the *scheduled* time, so a stalled server cannot hide its queue
  behind a client that waited (coordinated omission); the send-to-response
  figure is kept beside it. Closed loop: N users with think time, as Locust
  does, for the lesson on why the two differ.
* Every request becomes a row of simulator.result.COLUMNS, timeouts and
  errors included, with the phases of its Server-Timing header. Rows are
  appended to a CSV as they come (``record_to``), so a crash or Ctrl-C keeps
  what was measured.
* The generator watches itself: how far behind schedule it sent (lag
  percentiles) and how much CPU it used. A run where the generator, not the
  app, was the bottleneck is flagged unreliable, with the reason.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import resource
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from simulator.result import COLUMNS, Result, machine_info, summarise
from simulator.scenario import Scenario
from simulator.traffic import EndpointMix, ZipfKeys, arrival_times, streams

from . import http11
from .domain import DATASET_ROWS

# a run is unreliable when the generator sent this late (p99), or used this much of its core
MAX_LAG_P99_MS = 5.0
MAX_GENERATOR_CPU = 0.85
_TIMING = re.compile(r"(\w+);dur=([0-9.]+)")
_ERRORS = {"db_pool_timeout": 3, "nosql_throttled": 4}
CONNECTION_ERROR = 7  # ERROR_CODES: the connection failed
_JSON = {"Content-Type": "application/json"}


def request_for(endpoint: str, key: int) -> tuple[str, str, bytes | None]:
    """The request the load sends for ``endpoint`` and a Zipf ``key`` (0 the most popular)."""
    if endpoint == "indicator":
        return "GET", f"/indicators/{key % DATASET_ROWS + 1}", None
    if endpoint == "indicator_list":
        return "GET", f"/indicators?limit=20&offset={(key * 20) % DATASET_ROWS}", None
    if endpoint == "summary":
        return "GET", f"/reports/summary?segment={key}", None
    if endpoint == "events_read":
        return "GET", f"/devices/dev-{key}/events", None
    if endpoint == "events_write":
        return "POST", f"/devices/dev-{key}/events", f'{{"type":"alert","severity":{key % 11}}}'.encode()
    raise ValueError(f"no request for endpoint {endpoint!r}")


def classify(status: int, body: bytes) -> int:
    """The ERROR_CODES key of a response."""
    if 0 < status < 400:
        return 0
    if status == 503 and not body.startswith(b"{"):
        return 2  # uvicorn's own plain-text 503: --limit-concurrency
    match = re.search(rb'"code":"(\w+)"', body)
    return _ERRORS.get(match.group(1).decode(), 6) if match else 6


_CACHE = {"HIT": 1, "MISS": 0}  # X-Cache, as the lab apps send it on cacheable routes


def phases(header: str | None) -> dict[str, float]:
    return {k: float(v) for k, v in _TIMING.findall(header or "")}


class LoadError(RuntimeError):
    """The load could not run (unreachable server, bad arguments)."""


class _Recorder:
    """Rows in memory and, as they come, in a CSV file."""

    NAMES = list(COLUMNS)

    def __init__(self, path: Path | None) -> None:
        self.rows: list[tuple] = []
        self.file = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # open for the whole run, closed by close(); line-buffered: each row reaches the disk
            self.file = open(path, "w", buffering=1)  # noqa: SIM115
            self.file.write(",".join(self.NAMES) + "\n")

    def add(self, row: tuple) -> None:
        self.rows.append(row)
        if self.file is not None:
            self.file.write(",".join(f"{v:.6f}" if isinstance(v, float) else str(v) for v in row) + "\n")

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def table(self) -> dict[str, np.ndarray]:
        data = np.array(self.rows, dtype=float).reshape(-1, len(self.NAMES))
        order = np.argsort(data[:, 0], kind="stable")
        return {n: data[order, i].astype(COLUMNS[n]) for i, n in enumerate(self.NAMES)}


class _Run:
    def __init__(self, url: str, scenario: Scenario, seed: int, recorder: _Recorder,
                 progress: Callable[[int, int], None] | None,
                 watch: Callable[[list[tuple]], None] | None = None) -> None:
        self.url = url.rstrip("/")
        self.scenario = scenario
        self.w = scenario.workload
        rngs = streams(seed, 8)
        # the model's order: arrivals, endpoint mix, think times, then keys
        self.rng_arrivals, self.mix, self.rng_think = rngs[0], EndpointMix(self.w, rngs[1]), rngs[2]
        self.keys = ZipfKeys(self.w.key_count, self.w.zipf_alpha, rngs[3])
        self.recorder = recorder
        self.progress = progress
        self.watch = watch
        self.watched = 0  # rows already handed to watch
        self.lags: list[float] = []
        self.speeds: list[tuple[float, float]] = []  # (scheduled s, the app's X-Lab-Speed)
        self.sent = self.done = 0
        self.expected = 0
        self.t0 = self.wall0 = 0.0

    async def send(self, client: http11.Client, scheduled: float, endpoint: int) -> None:
        loop = asyncio.get_running_loop()
        method, path, body = request_for(self.w.endpoints[endpoint].name, self.keys())
        sent = loop.time()
        self.lags.append(sent - scheduled)
        self.sent += 1
        status, error, content, headers = 0, 0, b"", {}
        try:
            async with asyncio.timeout(self.w.timeout_s):
                response = await client.request(method, path, body, _JSON if body else None)
            status, content, headers = response.status, response.body, response.headers
            sent = response.sent  # after any wait for a free connection: the uncorrected clock starts here
            error = classify(status, content)
        except TimeoutError:
            error = 5
        except OSError:  # refused, reset, closed mid-response: no answer
            error = CONNECTION_ERROR
        end = loop.time()
        if error == 5:
            end = sent + self.w.timeout_s
        t = phases(headers.get("server-timing"))
        if "x-lab-speed" in headers:
            self.speeds.append((scheduled - self.t0, float(headers["x-lab-speed"])))
        span = headers.get("x-lab-span", "").split()
        start = float(span[0]) - self.wall0 if span else sent - self.t0
        self.recorder.add((
            scheduled - self.t0, start, end - self.t0, status, error, endpoint, int(span[2]) if span else -1,
            _CACHE.get(headers.get("x-cache"), -1), int(headers.get("x-lab-throttles", 0)), t.get("cpu", 0.0),
            t.get("cache", 0.0), t.get("pool", 0.0), t.get("db", 0.0),
            t.get("nosql", 0.0), t.get("app", 0.0), (end - scheduled) * 1000, (end - sent) * 1000))
        self.done += 1

    async def open_loop(self, client: http11.Client) -> None:
        loop = asyncio.get_running_loop()
        times = arrival_times(self.w, self.rng_arrivals)
        endpoints = self.mix.draw(len(times))
        self.expected = len(times)
        tasks = set()
        for t, ep in zip(times, endpoints, strict=True):
            at = self.t0 + t
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.send(client, at, ep))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(tasks)

    async def user(self, client: http11.Client, horizon: float) -> None:
        loop = asyncio.get_running_loop()
        while loop.time() < horizon:
            await self.send(client, loop.time(), self.mix.draw(1)[0])
            if self.w.think_time_s > 0:
                await asyncio.sleep(self.rng_think.exponential(self.w.think_time_s))

    async def report(self) -> None:
        while True:
            self.tell()
            await asyncio.sleep(0.25)

    def tell(self) -> None:
        """Progress so far, and the rows recorded since the last call to ``watch``."""
        if self.progress is not None:
            self.progress(self.done, max(self.expected, self.done))
        if self.watch is not None:
            rows = self.recorder.rows
            fresh, self.watched = rows[self.watched:], len(rows)
            if fresh:
                self.watch(fresh)

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        w = self.w
        try:
            httpx.get(f"{self.url}/health", timeout=5.0)
        except httpx.HTTPError as exc:
            raise LoadError(f"cannot reach {self.url}: {type(exc).__name__}") from None
        address = httpx.URL(self.url)
        client = http11.Client(address.host, address.port or 80, self.w.client_connections)
        try:
            self.t0, self.wall0 = loop.time(), time.time()
            reporter = asyncio.create_task(self.report())
            try:
                if w.arrival == "closed":
                    horizon = self.t0 + w.warmup_s + w.duration_s
                    self.expected = int(w.users * (w.warmup_s + w.duration_s) / max(w.think_time_s, 0.01))
                    await asyncio.gather(*(self.user(client, horizon) for _ in range(w.users)))
                else:
                    await self.open_loop(client)
            finally:
                reporter.cancel()
                self.tell()
        finally:
            client.close()


def _died(errors: np.ndarray) -> bool:
    """The run ends in an unbroken streak of connection errors, at least a tenth of it and 5 requests
    long: the server went away, whenever in the run that was (not a share of the whole run, which
    would miss a server that died late)."""
    failed = errors == CONNECTION_ERROR
    if not failed.size or not failed[-1]:
        return False
    streak = failed.size - (np.flatnonzero(~failed)[-1] + 1 if (~failed).any() else 0)
    return streak >= max(5, failed.size // 10)


def load(url: str, scenario: Scenario, *, seed: int = 0, record_to: str | os.PathLike | None = None,
         progress: Callable[[int, int], None] | str | None = "auto", cpus: list[int] | None = None,
         meta: dict[str, Any] | None = None,
         watch: Callable[[list[tuple]], None] | None = None) -> Result:
    """Send the scenario's workload to ``url``; return the measured Result.

    ``record_to``: a CSV file that receives every row as it comes. ``cpus``:
    pin the generator (this process) to these CPUs while it runs, then
    restore. ``progress``: "auto" (a bar in a notebook or a terminal), None,
    or a callable(done, expected). On a server that dies mid-run, or on
    Ctrl-C, what was measured so far is kept: the rows and the summary come
    back with ``meta["partial"]`` saying why. ``watch``: a callable that receives,
    four times a second, the rows recorded since its last call (tuples in
    ``COLUMNS`` order): a live chart. In a notebook, whose kernel already runs
    an event loop, the generator's loop runs in a thread of its own. At most the
    workload's ``client_connections`` requests are in flight (the model has the same
    limit); a request due while all are busy waits for one (and its corrected
    latency shows that wait, its uncorrected one does not).
    """
    w = scenario.workload
    if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise LoadError(f"the load generator only sends to this machine's loopback; got {url!r}")
    recorder = _Recorder(Path(record_to) if record_to else None)
    run = _Run(url, scenario, seed, recorder, _progress(progress), watch)
    partial = None
    try:
        generator_affinity, cpu = _run_pinned(run.main, cpus)
    except KeyboardInterrupt:
        partial = "interrupted (Ctrl-C)"
        generator_affinity, cpu = (sorted(cpus) if cpus else None), math.nan
    finally:
        recorder.close()
    rows = recorder.table()
    if partial is None and _died(rows["error"]):
        partial = "the server stopped answering (connection errors to the end)"
    lags = np.array(run.lags) * 1000 if run.lags else np.zeros(1)
    lag = {"p50_ms": float(np.percentile(lags, 50)), "p99_ms": float(np.percentile(lags, 99)),
           "max_ms": float(lags.max())}
    reasons = []
    if w.arrival != "closed" and lag["p99_ms"] > MAX_LAG_P99_MS:
        reasons.append(f"the generator sent late: lag p99 {lag['p99_ms']:.1f} ms > {MAX_LAG_P99_MS:g} ms")
    if cpu > MAX_GENERATOR_CPU:
        reasons.append(f"the generator used {cpu:.0%} of a core (> {MAX_GENERATOR_CPU:.0%})")
    window = (w.warmup_s, w.warmup_s + w.duration_s)
    summary = summarise(rows, window_s=window)
    info = {**(meta or {}), "machine": machine_info(),
            "generator": {"lag": lag, "cpu_share": None if math.isnan(cpu) else cpu, "cpu_affinity": generator_affinity,
                          "requests_sent": run.sent, "requests_scheduled": run.expected},
            "host_speed": host_speed(run.speeds, window),
            "unreliable": reasons, "partial": partial, "url": url, "requests_total": int(rows["status"].size)}
    return Result(kind="measured", scenario=scenario, seed=seed,
                  rows={k: v[(rows["scheduled_s"] >= window[0]) & (rows["scheduled_s"] < window[1])]
                        for k, v in rows.items()},
                  summary=summary, meta=info)


def host_speed(speeds: list[tuple[float, float]], window: tuple[float, float]) -> dict | None:
    """How fast the app's core ran Python during the window, from each response's ``X-Lab-Speed``
    (its CPU burn's loop iterations per CPU millisecond, ``cpu_work``): the median, the 10th and
    90th percentiles over requests, and the median of each second (a trace, ``[[second, speed]]``).
    None when no response reported it (a recipe without CPU)."""
    if not speeds:
        return None
    t, v = np.array(speeds).T
    inside = (t >= window[0]) & (t < window[1])
    if not inside.any():
        return None
    t, v = t[inside], v[inside]
    seconds = np.floor(t).astype(int)
    trace = [[int(s), float(np.median(v[seconds == s]))] for s in np.unique(seconds)]
    return {"median": float(np.median(v)), "p10": float(np.percentile(v, 10)),
            "p90": float(np.percentile(v, 90)), "per_second": trace}


def _run_pinned(main: Callable[[], Any], cpus: list[int] | None) -> tuple[list[int] | None, float]:
    """Run ``main()``'s event loop in a thread of its own, pinned to ``cpus``.

    A thread, not this one: a notebook's kernel already runs a loop here, and
    a thread's affinity and CPU clock are its own (this process's other
    threads keep theirs). Returns (the thread's CPU affinity, its CPU share
    of the wall time). Ctrl-C here cancels the run and is raised again.
    """
    box: dict[str, Any] = {}
    ready = threading.Event()

    def target() -> None:
        # asyncio.Runner, as asyncio.run: on the way out it cancels and awaits every task left
        with asyncio.Runner() as runner:
            try:
                if cpus:
                    os.sched_setaffinity(0, cpus)  # 0: the calling thread
                box["affinity"] = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
                box["loop"] = runner.get_loop()
                ready.set()
                usage0, wall0 = resource.getrusage(_RUSAGE), time.perf_counter()
                runner.run(main())
                usage1 = resource.getrusage(_RUSAGE)
                box["cpu"] = ((usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)) / max(
                    time.perf_counter() - wall0, 1e-9)
            except BaseException as exc:  # handed to the caller's thread
                box["error"] = exc
            finally:
                ready.set()

    def cancel_all() -> None:
        for task in asyncio.all_tasks(box["loop"]):
            task.cancel()

    thread = threading.Thread(target=target, name="latency-lab-loadgen", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.1)
    except KeyboardInterrupt:
        ready.wait()
        if "loop" in box and not box["loop"].is_closed():
            box["loop"].call_soon_threadsafe(cancel_all)
        thread.join()
        raise
    error = box.get("error")
    if error is not None:
        raise error
    return box.get("affinity"), box["cpu"]


# the generator's own CPU: its thread's where the OS tells (Linux), else the process's
_RUSAGE = getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF)


def _progress(progress):
    if progress != "auto":
        return progress
    try:
        from IPython import get_ipython

        if get_ipython() is not None and "IPKernelApp" in get_ipython().config:
            return _NotebookBar()
    except ImportError:
        pass
    return _TerminalBar() if sys.stderr.isatty() else None


class _TerminalBar:
    def __call__(self, done: int, expected: int) -> None:
        frac = min(1.0, done / expected) if expected else 0.0
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r[{bar:<30}] {done}/{expected} requests")
        if expected and done >= expected:
            sys.stderr.write("\n")
        sys.stderr.flush()


class _NotebookBar:
    def __init__(self) -> None:
        import ipywidgets
        from IPython.display import display

        self.bar = ipywidgets.IntProgress(min=0, max=1, description="load")
        self.label = ipywidgets.Label()
        display(ipywidgets.HBox([self.bar, self.label]))

    def __call__(self, done: int, expected: int) -> None:
        self.bar.max = max(expected, 1)
        self.bar.value = min(done, self.bar.max)
        self.label.value = f"{done}/{expected} requests"
