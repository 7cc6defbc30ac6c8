"""Exact event logs for tiny hand-checkable cases.

Three requests sent at t=0; each needs 2 ms of CPU then one 5 ms DB wait
(no framework CPU, no DB CPU, no network). Every line of each log can be
worked out on paper; the comments do so.
"""

import pytest

from simulator import Backends, Endpoint, Fixed, Hardware, Scenario, Server, Workload, simulate
from simulator import model as sim_model

RECIPE = Endpoint(name="tiny", cpu_ms=Fixed(2.0), io_ms=Fixed(5.0), db_cpu_ms=Fixed(0.0))


@pytest.fixture(autouse=True)
def free_connections(request, monkeypatch):
    """Opening and closing DB connections costs nothing here, so that each log shows the one
    thing its test is about; the churn has a log of its own, marked to keep the real costs."""
    if request.node.get_closest_marker("connection_costs") is None:
        monkeypatch.setitem(sim_model.CONNECTION_COST, "sqlite", sim_model.ConnectionCost(0, 0.0, 0.0, 0, 0.0))


def run(model: str, workers: int, backends: Backends | None = None, **server) -> list[tuple[float, int, str]]:
    scenario = Scenario(
        hardware=Hardware(api_cores=2, network_rtt_ms=0.0),
        server=Server(model=model, workers=workers, framework_cpu_ms=0.0, **server),
        workload=Workload(endpoints=(RECIPE,)),
        backends=backends or Backends(),
    )
    log: list[tuple[float, int, str]] = []
    simulate(scenario, trace=log, arrivals=[0.0, 0.0, 0.0])
    # Events at one instant are simultaneous: list them by request (a stable
    # sort keeps each request's own events in the order they happened).
    return sorted(log, key=lambda event: (event[0], event[1]))


def test_sync_two_workers_third_request_waits_in_the_accept_queue():
    assert run("sync", workers=2) == [
        (0.0, 0, "start p0"), (0.0, 1, "start p1"),  # one request per worker
        (2.0, 0, "db"), (2.0, 1, "db"),  # two cores: both CPU phases run at once
        (7.0, 0, "end"), (7.0, 1, "end"),
        (7.0, 2, "start p0"),  # the longest-idle worker takes the queued connection
        (9.0, 2, "db"), (14.0, 2, "end"),
    ]


def test_threads_share_one_gil():
    assert run("threads", workers=1, threads=2) == [
        (0.0, 0, "start p0"), (0.0, 1, "start p0"),
        (2.0, 0, "db"),
        (4.0, 1, "db"),  # waited 2 ms for the GIL although a core was free
        (7.0, 0, "end"),
        (7.0, 2, "start p0"),  # the freed thread picks up the third request
        (9.0, 1, "end"), (9.0, 2, "db"),  # the same instant: 4 + 5 and 7 + 2 ms
        (14.0, 2, "end"),
    ]


def test_async_event_loop_runs_cpu_phases_one_at_a_time_and_overlaps_waits():
    assert run("async", workers=1) == [
        (0.0, 0, "start p0"), (0.0, 1, "start p0"), (0.0, 2, "start p0"),  # all accepted at once
        (2.0, 0, "db"), (4.0, 1, "db"), (6.0, 2, "db"),  # CPU phases in turn on the one loop
        (7.0, 0, "end"), (9.0, 1, "end"), (11.0, 2, "end"),  # the waits overlap
    ]


def test_threadpool_tokens_cap_concurrent_def_endpoints():
    assert run("threadpool", workers=1, threadpool_tokens=2) == [
        (0.0, 0, "start p0"), (0.0, 1, "start p0"),
        (2.0, 0, "db"), (4.0, 1, "db"),  # the two threads share the GIL
        (7.0, 0, "end"),
        (7.0, 2, "start p0"),  # the third request got the token the first returned
        (9.0, 1, "end"), (9.0, 2, "db"),  # the same instant
        (14.0, 2, "end"),
    ]


def test_async_blocking_serialises_the_loop_like_one_sync_worker():
    assert run("async-blocking", workers=1) == [
        (0.0, 0, "start p0"), (2.0, 0, "db"), (7.0, 0, "end"),  # the wait held the loop
        (7.0, 1, "start p0"), (9.0, 1, "db"), (14.0, 1, "end"),
        (14.0, 2, "start p0"), (16.0, 2, "db"), (21.0, 2, "end"),
    ]
    assert run("async-blocking", workers=1) == run("sync", workers=1)


@pytest.mark.connection_costs
def test_a_pool_with_no_idle_connection_opens_one_and_a_full_pool_closes_the_extra():
    """SQLAlchemy's QueuePool, pool_size 1 + max_overflow 1, under gthread with two threads
    sharing a GIL. Opening an aiosqlite connection costs 0.5 ms of CPU; closing one that the
    full pool will not keep, 0.26 ms (model.CONNECTION_COST). The pool starts empty."""
    assert run("threads", workers=1, threads=2, backends=Backends(pool_size=1, max_overflow=1)) == [
        (0.0, 0, "start p0"), (0.0, 1, "start p0"),
        (4.5, 0, "db"),  # CPU 0-2, then the GIL is request 1's (2-4); opens a connection 4-4.5
        (5.0, 1, "db"),  # CPU 2-4; the second connection opens after the first, 4.5-5
        (9.5, 0, "end"),  # returned to the pool, which keeps it: one idle
        (9.5, 2, "start p0"),  # the freed thread; the GIL is free: CPU 9.5-11.5
        (11.5, 2, "db"),  # the idle connection, taken: nothing to open
        (11.76, 1, "end"),  # returned at 10, to a full pool: closed once the GIL is free, 11.5-11.76
        (16.5, 2, "end"),
    ]
