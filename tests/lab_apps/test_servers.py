"""The knobs against real servers: gunicorn and uvicorn on 127.0.0.1, free ports,
stopped by the test that started them, whole process group included."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from lab_apps.launcher import LaunchError, group_alive, serve
from simulator import Scenario

from .test_parity import REQUESTS, assert_same

SLOW_DB = Scenario().with_knobs(cpu_ms=0.0, io_ms=200.0, db_cpu_ms=0.0)


def fire(url: str, n: int, path: str = "/indicators/1", method: str = "GET", **kwargs) -> list[httpx.Response]:
    """n requests at once, each on its own connection."""
    with httpx.Client(limits=httpx.Limits(max_connections=n), timeout=60) as client, ThreadPoolExecutor(n) as pool:
        return list(pool.map(lambda _: client.request(method, url + path, **kwargs), range(n)))


def spans(responses) -> list[tuple[float, float, int]]:
    out = []
    for r in responses:
        start, end, pid = r.headers["x-lab-span"].split()
        out.append((float(start), float(end), int(pid)))
    return out


def most_at_once(intervals) -> int:
    events = sorted([(s, 1) for s, _e, *_ in intervals] + [(e, -1) for _s, e, *_ in intervals])
    now = peak = 0
    for _t, step in events:
        now += step
        peak = max(peak, now)
    return peak


def phase(response, name: str) -> float:
    return float(re.search(rf"{name};dur=([0-9.]+)", response.headers["server-timing"]).group(1))


@pytest.fixture
def launched():
    """Start servers through this; afterwards, check no process group survived."""
    servers = []

    def start(app: str, scenario: Scenario, **kwargs):
        cm = serve(app, scenario, **kwargs)
        server = cm.__enter__()
        servers.append((cm, server))
        return server

    yield start
    for cm, server in servers:
        cm.__exit__(None, None, None)
        assert not any(group_alive(g) for g in server.pgids), "a server's process group outlived its test"


def test_n_sync_workers_serve_at_most_n_requests_at_once(launched):
    server = launched("flask", SLOW_DB.with_knobs(model="sync", workers=2))
    responses = fire(server.url, 6)
    assert all(r.status_code == 200 for r in responses)
    assert most_at_once(spans(responses)) == 2
    assert len({pid for *_, pid in spans(responses)}) == 2


def test_an_event_loop_overlaps_the_waits_and_async_blocking_serialises_them(launched):
    loop = launched("fastapi", SLOW_DB.with_knobs(model="async", workers=1))
    assert most_at_once(spans(fire(loop.url, 5))) == 5
    blocked = launched("fastapi", SLOW_DB.with_knobs(model="async-blocking", workers=1))
    responses = fire(blocked.url, 4)
    assert all(r.status_code == 200 for r in responses)
    assert most_at_once(spans(responses)) == 1  # each wait held the loop


def test_a_pool_of_p_connections_admits_p_queries_at_once(launched):
    scenario = Scenario().with_knobs(model="threads", workers=1, threads=6, cpu_ms=0.0, io_ms=150.0, db_cpu_ms=0.0,
                                     pool_size=2, max_overflow=0)
    server = launched("flask", scenario)
    waits = sorted(phase(r, "pool") for r in fire(server.url, 6))
    assert sum(w < 50 for w in waits) == 2  # two got a connection at once
    assert waits[-1] > 250  # the last two waited for two rounds of 150 ms


def test_pool_exhaustion_answers_503_with_the_contract_error(launched):
    scenario = Scenario().with_knobs(model="threads", workers=1, threads=4, cpu_ms=0.0, io_ms=300.0, db_cpu_ms=0.0,
                                     pool_size=1, max_overflow=0, pool_timeout_s=0.1)
    server = launched("flask", scenario)
    responses = fire(server.url, 4)
    refused = [r for r in responses if r.status_code == 503]
    assert refused and all(r.json()["error"]["code"] == "db_pool_timeout" for r in refused)


def test_a_throttled_nosql_write_retries_with_backoff_then_fails(launched):
    scenario = Scenario().with_knobs(model="async", workers=1, nosql_write_units=1.0, nosql_max_attempts=3,
                                     nosql_backoff_base_ms=20.0)
    server = launched("fastapi", scenario)
    httpx.post(f"{server.nosql_url}/reset")  # a fresh bucket: none of the capacity saved while starting
    # four at once: the bucket holds one unit and refills one a second, far slower
    # than the 20 + 40 ms of backoff the three others sleep through
    responses = fire(server.url, 4, "/devices/d1/events", "POST", content=b'{"type":"scan","severity":2}',
                     headers={"Content-Type": "application/json"})
    assert sorted(r.status_code for r in responses) == [201, 503, 503, 503]
    failed = [r for r in responses if r.status_code == 503]
    for r in failed:
        assert r.json()["error"]["code"] == "nosql_throttled"
        assert phase(r, "nosql") >= 20 + 40  # slept 20 then 40 ms between its three attempts
    stats = httpx.get(f"{server.nosql_url}/stats").json()
    assert stats["items"] == 1 and stats["throttled_writes"] >= 3 * len(failed)


@pytest.mark.parametrize("app, model, workers", [("flask", "sync", 4), ("fastapi", "async", 2)])
def test_fifty_concurrent_duplicates_store_exactly_one_event(launched, app, model, workers):
    server = launched(app, Scenario().with_knobs(model=model, workers=workers, nosql_write_units=1000.0,
                                                 nosql_start_burst_s=1.0))
    headers = {"Content-Type": "application/json", "Idempotency-Key": "pay-42"}
    responses = fire(server.url, 50, "/devices/till-7/events", "POST", content=b'{"type":"alert","severity":9}',
                     headers=headers)
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1  # every caller sees the one event
    assert len(httpx.get(f"{server.url}/devices/till-7/events").json()["events"]) == 1
    assert httpx.get(f"{server.nosql_url}/stats").json()["items"] == 1


def test_uvicorn_limit_concurrency_answers_503_past_it(launched):
    server = launched("fastapi", SLOW_DB.with_knobs(model="async", workers=1, limit_concurrency=3))
    codes = [r.status_code for r in fire(server.url, 10)]
    assert 503 in codes and 200 in codes


def test_real_servers_answer_byte_for_byte_the_same(launched):
    flask = launched("flask", Scenario().with_knobs(model="sync", workers=2))
    fastapi = launched("fastapi", Scenario().with_knobs(model="async", workers=2))
    answers = []
    for server in (flask, fastapi):
        with httpx.Client(base_url=server.url) as client:
            answers.append([(r.status_code, r.content) for r in
                            (client.request(m, p, content=b, headers=h) for m, p, b, h in REQUESTS)])
    assert_same(*answers)


def test_postgresql_and_redis_behind_real_servers(launched, postgres_url, redis_url):
    cached = Scenario().with_knobs(cache="redis", ttl_s=30.0, database="postgresql")
    flask = launched("flask", cached.with_knobs(model="sync", workers=2), database_url=postgres_url,
                     redis_url=redis_url)
    fastapi = launched("fastapi", cached.with_knobs(model="async", workers=2), database_url=postgres_url,
                       redis_url=redis_url)
    assert flask.config()["database"] == fastapi.config()["database"] == "postgresql"
    assert httpx.get(flask.url + "/health").json()["checks"] == {"db": "ok", "cache": "ok", "nosql": "ok"}
    first = httpx.get(flask.url + "/indicators/31337")
    second = httpx.get(fastapi.url + "/indicators/31337")  # the other app, the shared cache
    assert first.content == second.content
    assert phase(first, "db") > 4.0 and phase(second, "db") == 0.0


def test_cpu_pinning_is_applied_and_reported(launched):
    import os

    cpu = sorted(os.sched_getaffinity(0))[-1]
    server = launched("fastapi", Scenario().with_knobs(model="async", workers=2), cpus=[cpu])
    assert server.config()["process"]["cpu_affinity"] == [cpu]


def test_a_server_that_cannot_start_says_why_and_leaves_nothing(tmp_path):
    with pytest.raises(LaunchError, match="cannot prepare the database"), \
            serve("flask", Scenario().with_knobs(database="postgresql"),
                  database_url="postgresql://nobody@127.0.0.1:1/none"):
        pass
    broken = Scenario().with_knobs(model="async", cache="redis")
    with pytest.raises(LaunchError, match="not healthy|exited") as failure, \
            serve("fastapi", broken, redis_url="redis://127.0.0.1:1/0", timeout_s=5):
        pass
    assert "log ends" in str(failure.value)


def test_the_launcher_refuses_a_model_the_app_does_not_run():
    with pytest.raises(ValueError, match="for 'async' use fastapi"), serve("flask", Scenario().with_knobs(model="async")):
        pass


def test_threadpool_tokens_cap_concurrent_def_endpoints(launched):
    server = launched("fastapi", SLOW_DB.with_knobs(model="threadpool", workers=1, threadpool_tokens=2))
    assert server.config()["threadpool_tokens"] == 2
    assert most_at_once(spans(fire(server.url, 6))) == 2


@pytest.mark.parametrize("app, model", [("flask", "sync"), ("fastapi", "async")])
def test_deferred_background_work_leaves_the_response_time(launched, app, model):
    base = Scenario().with_knobs(model=model, workers=1, background_ms=300.0)
    inline = launched(app, base.with_knobs(background="inline"))
    deferred = launched(app, base.with_knobs(background="deferred"))
    assert phase(httpx.get(inline.url + "/indicators/3"), "app") >= 300
    assert phase(httpx.get(deferred.url + "/indicators/3"), "app") < 100


def test_servers_die_with_the_process_that_started_them():
    """A notebook kernel killed outright runs no cleanup: the servers must still go."""
    import subprocess
    import sys
    import time

    script = ("import time\nfrom lab_apps.launcher import start\nfrom simulator import Scenario\n"
              "s = start('fastapi', Scenario().with_knobs(model='async', workers=2))\n"
              "print(' '.join(str(g) for g in s.pgids), flush=True)\ntime.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pgids = [int(g) for g in parent.stdout.readline().split()]
        assert len(pgids) == 2 and all(group_alive(g) for g in pgids)
    finally:
        parent.kill()  # SIGKILL: no atexit, no finally, like a kernel that dies
        parent.wait()
        parent.stdout.close()
    deadline = time.monotonic() + 20
    while any(group_alive(g) for g in pgids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(group_alive(g) for g in pgids)


@pytest.mark.parametrize(("exiting", "tolerance_s"), [(False, 0.002), (True, 0.021)])
def test_a_process_groups_cpu_is_counted_finer_than_ticks(exiting, tolerance_s):
    """measure() subtracts the app's idle CPU from its work per request: at 20 req/s one per
    cent of a core is half a millisecond per request, finer than /proc's 10 ms ticks. With a
    thread gone, its CPU still counts, to the tick."""
    import subprocess
    import sys
    import time

    from lab_apps.launcher import group_cpu_seconds, stop_group

    code = ("import threading, time\n"
            "def burn(s):\n"
            "    end = time.thread_time() + s\n"
            "    while time.thread_time() < end: pass\n"
            f"if {exiting}:\n"
            "    t = threading.Thread(target=burn, args=(0.15,)); t.start(); t.join()\n"
            "threading.Thread(target=lambda: (burn(0.1), time.sleep(60)), daemon=True).start()\n"
            "burn(0.05); time.sleep(0.3)\n"
            "print(time.process_time(), flush=True); time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        reported = float(child.stdout.readline())
        time.sleep(0.05)
        assert reported > 0.15
        assert group_cpu_seconds(child.pid) == pytest.approx(reported, abs=tolerance_s)
    finally:
        child.stdout.close()
        stop_group(child)


@pytest.mark.parametrize("app, model", [("flask", "threads"), ("fastapi", "async")])
def test_gil_switch_interval_and_gc_threshold_reach_every_worker(launched, app, model):
    # the model's gil_switch_interval_ms and gc_threshold are sys.setswitchinterval and gc.set_threshold
    # in the apps, not knobs on one side only
    server = launched(app, Scenario().with_knobs(model=model, workers=2, gil_switch_interval_ms=1.5,
                                                 gc_threshold=0))
    seen = {}
    for _ in range(40):  # the kernel spreads connections over both workers
        process = server.config()["process"]
        seen[process["pid"]] = (process["gil_switch_interval_ms"], process["gc_threshold"])
    assert set(seen.values()) == {(1.5, 0)}  # 0: gc.disable(), as the model's gc_threshold 0 means


def test_the_app_cores_busy_time_counts_whatever_ran_on_them():
    """measure() records how busy the app's cores were beside the app's own CPU: a process
    burning 0.5 s on one CPU shows there, and the CPU's elapsed time is the wall time."""
    import os
    import subprocess
    import sys
    import time

    from lab_apps.launcher import cpus_busy_seconds

    cpu = max(os.sched_getaffinity(0))
    before, t0 = cpus_busy_seconds([cpu]), time.perf_counter()
    burn = (f"import os, time\nos.sched_setaffinity(0, {{{cpu}}})\nend = time.process_time() + 0.5\n"
            "while time.process_time() < end: pass\n")
    subprocess.run([sys.executable, "-c", burn], check=True, timeout=30)
    after, wall = cpus_busy_seconds([cpu]), time.perf_counter() - t0
    busy, elapsed = after[0] - before[0], after[1] - before[1]
    assert busy >= 0.45  # the burn, to the 10 ms tick, plus whatever else ran there
    assert elapsed == pytest.approx(wall, abs=0.05)
    assert cpus_busy_seconds([])[1] == 0.0
