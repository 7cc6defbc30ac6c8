"""What a learner will see, checked: the lessons the model must teach."""

import numpy as np
import pytest

from simulator import Endpoint, Exponential, Fixed, predict, simulate

from .conftest import bare, pure


def test_async_beats_sync_when_io_dominates():
    """1 ms CPU, 50 ms DB wait: 4 sync workers cap at ~78 req/s, one event loop at ~700."""
    endpoint = pure(cpu=Fixed(1.0), io=Fixed(50.0))
    sync = simulate(bare("sync", 4, rate=150.0, duration=30.0, endpoint=endpoint), seed=1).summary
    loop = simulate(bare("async", 1, rate=150.0, duration=30.0, endpoint=endpoint), seed=1).summary
    assert loop.throughput_rps == pytest.approx(150.0, rel=0.05)
    assert sync.throughput_rps < 85.0  # 4 workers / 51 ms
    assert loop.p50_ms < 60.0 < sync.p50_ms


def test_async_does_not_beat_sync_when_cpu_dominates():
    """10 ms CPU, 1 ms wait on 2 cores: one event loop is one core (~97 req/s); 4 sync workers use both."""
    endpoint = pure(cpu=Fixed(10.0), io=Fixed(1.0))
    sync = simulate(bare("sync", 4, rate=120.0, duration=30.0, endpoint=endpoint), seed=1).summary
    loop = simulate(bare("async", 1, rate=120.0, duration=30.0, endpoint=endpoint), seed=1).summary
    assert sync.throughput_rps == pytest.approx(120.0, rel=0.05)
    assert loop.throughput_rps <= 100.5  # one core's worth: 1 / 10 ms
    assert sync.p50_ms < loop.p50_ms


def test_async_blocking_behaves_like_one_sync_worker_per_process():
    endpoint = pure(cpu=Fixed(2.0), io=Exponential(8.0))
    one_sync = simulate(bare("sync", 1, rate=80.0, endpoint=endpoint), seed=4)
    one_blocking = simulate(bare("async-blocking", 1, rate=80.0, endpoint=endpoint), seed=4)
    # one process: the very same queue, request for request
    assert np.array_equal(one_sync.rows["latency_ms"], one_blocking.rows["latency_ms"])
    # Several processes: the same capacity. (uvicorn spreads connections over its
    # workers, gunicorn's workers share one accept queue, so latency differs a little.)
    four_sync = simulate(bare("sync", 4, rate=300.0, endpoint=endpoint), seed=4).summary
    four_blocking = simulate(bare("async-blocking", 4, rate=300.0, endpoint=endpoint), seed=4).summary
    assert four_blocking.throughput_rps == pytest.approx(four_sync.throughput_rps, rel=0.02)
    healthy = simulate(bare("async", 4, rate=300.0, endpoint=endpoint), seed=4).summary
    assert healthy.p99_ms < four_blocking.p99_ms


def test_a_pool_smaller_than_the_threads_makes_requests_queue_for_connections():
    endpoint = pure(cpu=Fixed(0.5), io=Fixed(20.0))
    roomy = bare("threads", 1, threads=8, rate=150.0, endpoint=endpoint).with_knobs(pool_size=8, max_overflow=0)
    tight = roomy.with_knobs(pool_size=2)
    assert simulate(roomy, seed=2).rows["pool_wait_ms"].mean() < 0.5
    waited = simulate(tight, seed=2)
    assert waited.rows["pool_wait_ms"].mean() > 5.0
    assert waited.summary.utilisation["pool"] > 0.5


def test_a_pool_timeout_answers_503_with_its_own_error_code():
    endpoint = pure(cpu=Fixed(0.5), io=Fixed(20.0))
    scenario = bare("threads", 1, threads=8, rate=200.0, endpoint=endpoint).with_knobs(
        pool_size=1, max_overflow=0, pool_timeout_s=0.01)
    r = simulate(scenario, seed=2)
    assert r.summary.errors > 0
    failed = r.rows["error"] == 3  # db_pool_timeout
    assert failed.sum() == r.summary.errors
    assert set(r.rows["status"][failed]) == {503}


def test_a_per_process_cache_hits_less_than_a_shared_one():
    endpoint = pure(io=Fixed(5.0), cacheable=True)
    local = bare("sync", 8, rate=200.0, endpoint=endpoint).with_knobs(cache="local", ttl_s=30.0, key_count=5000)
    shared = local.with_knobs(cache="redis")
    local_hits = simulate(local, seed=1).summary.cache_hit_ratio
    shared_hits = simulate(shared, seed=1).summary.cache_hit_ratio
    assert local_hits < shared_hits - 0.1


def test_uvicorn_limit_concurrency_sheds_load_with_503():
    endpoint = pure(cpu=Fixed(1.0), io=Fixed(100.0))
    scenario = bare("async", 1, rate=200.0, endpoint=endpoint, limit_concurrency=10)
    r = simulate(scenario, seed=1)
    assert r.summary.errors > 0
    assert (r.rows["error"] == 2).sum() == r.summary.errors  # limit_concurrency
    assert r.summary.p99_ms < 110.0  # the ones admitted are fast


def test_gil_slices_long_cpu_bursts_between_threads():
    """Two 20 ms CPU bursts in one process take turns every 5 ms (sys.getswitchinterval)."""
    endpoint = pure(cpu=Fixed(20.0), queries=0)
    scenario = bare("threads", 1, threads=2, endpoint=endpoint)
    log: list = []
    r = simulate(scenario, arrivals=[0.0, 0.0], trace=log)
    # Sliced: both finish near 35-40 ms. Unsliced FIFO would finish them at 20 and 40.
    assert sorted(r.rows["latency_ms"].round(6).tolist()) == [35.0, 40.0]


def test_deferred_background_work_leaves_the_response_time():
    inline = Endpoint(name="signup", cpu_ms=Fixed(1.0), queries_per_request=0, background_ms=Fixed(200.0))
    deferred = Endpoint(name="signup", cpu_ms=Fixed(1.0), queries_per_request=0, background_ms=Fixed(200.0),
                        background="deferred")
    slow = simulate(bare("async", 1, rate=20.0, endpoint=inline), seed=1).summary
    fast = simulate(bare("async", 1, rate=20.0, endpoint=deferred), seed=1).summary
    assert slow.p50_ms > 200.0 > 5.0 > fast.p50_ms


def test_nosql_throttling_retries_with_botocore_backoff_then_fails():
    """A throttled call is retried after 50, 100, 200 ... ms; after 10 attempts the request fails."""
    endpoint = pure(name="events_write", queries=0, nosql_writes=1)
    # each failing request retries for ~51 s: more than the client's 1024 connections stay busy,
    # and the calls it could not send would time out in the client; not the subject here
    scenario = bare("async", 1, rate=1000.0, duration=20.0, endpoint=endpoint).with_knobs(
        nosql_write_units=50.0, client_connections=100_000)
    r = simulate(scenario, seed=1)
    assert r.summary.throttles > 0
    assert (r.rows["error"] == 4).sum() > 0  # nosql_throttled after the last attempt
    retried_ok = (r.rows["throttles"] > 0) & (r.rows["error"] == 0)
    assert retried_ok.any()
    # Every retried success waited at least the backoff it slept: 50 ms after one throttle.
    assert (r.rows["nosql_ms"][retried_ok] >= 50.0).all()


def test_one_seed_one_answer_and_common_random_numbers():
    scenario = bare("sync", 2, rate=50.0)
    a, b = simulate(scenario, seed=7), simulate(scenario, seed=7)
    assert a.summary == b.summary
    assert simulate(scenario, seed=8).summary != a.summary
    # changing a server knob does not change which requests arrive, or when
    other = simulate(scenario.with_workers(3), seed=7)
    assert (other.rows["scheduled_s"] == a.rows["scheduled_s"]).all()


def test_analytic_and_simulated_capacity_agree_on_the_reference_scenario():
    from simulator import Scenario

    # Past the 4 workers' capacity. Exponential times, as the formulas assume: with
    # every phase fixed, requests fall into lockstep on the CPU and lose ~5% more.
    scenario = Scenario().with_knobs(rate_rps=600.0, duration_s=30.0, cpu_ms=Exponential(2.0),
                                     io_ms=Exponential(5.0))
    cap = predict(scenario).capacity_rps
    assert simulate(scenario, seed=1).summary.throughput_rps == pytest.approx(cap, rel=0.05)


def test_sqlite_puts_the_query_cpu_on_the_api_server_and_postgresql_on_its_own_cores():
    endpoint = Endpoint(name="q", cpu_ms=Fixed(1.0), io_ms=Fixed(1.0), db_cpu_ms=Fixed(4.0))
    base = bare("async", 1, rate=100.0, endpoint=endpoint)
    embedded = simulate(base.with_knobs(database="sqlite"), seed=1).summary
    server = simulate(base.with_knobs(database="postgresql"), seed=1).summary
    assert embedded.utilisation["db_cpu"] == 0.0 and server.utilisation["db_cpu"] > 0.05
    assert embedded.utilisation["workers"] > 2 * server.utilisation["workers"]  # the loop held for the query CPU


def test_async_driver_round_trips_cost_nothing_on_an_idle_loop():
    """One request at a time: each of aiosqlite's round trips finds the loop idle, so the DB
    phase is the query's wait and CPU, to the microsecond."""
    endpoint = Endpoint(name="q", cpu_ms=Fixed(2.0), io_ms=Fixed(5.0), db_cpu_ms=Fixed(0.5))
    r = simulate(bare("async", 1, rate=2.0, duration=20.0, endpoint=endpoint), seed=1)
    assert r.rows["db_ms"] == pytest.approx(np.full(r.rows["db_ms"].size, 5.5), abs=1e-6)


def test_an_event_loop_spreads_the_framework_cpu_over_its_steps_and_loses_none():
    """uvicorn's callbacks, SQLAlchemy's greenlet hops and the driver's result delivery each
    run a share of the framework's CPU. Alone, a request still takes its CPU and its wait,
    to the microsecond; under load the loop is busy for exactly framework + handler + query
    CPU per request (the utilisation law)."""
    endpoint = Endpoint(name="q", cpu_ms=Fixed(2.0), io_ms=Fixed(5.0), db_cpu_ms=Fixed(0.5))
    alone = bare("async", 1, cores=1, rate=2.0, duration=20.0, endpoint=endpoint).with_knobs(
        framework_cpu_ms=1.4, network_rtt_ms=0.0, arrival="constant")
    r = simulate(alone, seed=1)
    assert r.rows["latency_ms"] == pytest.approx(np.full(r.rows["latency_ms"].size, 1.4 + 2.0 + 0.5 + 5.0), abs=1e-6)
    busy = simulate(alone.with_knobs(rate_rps=100.0), seed=1).summary
    assert busy.utilisation["api_cpu"] == pytest.approx(busy.throughput_rps * 3.9 / 1000, rel=0.01)


def test_each_driver_round_trip_waits_for_the_loop_so_aiosqlite_queues_more_than_asyncpg():
    """At the same loop load, a query's DB phase grows by the waits of its round trips:
    aiosqlite makes 5 (cursor, execute, fetchall, close, the rollback on return), asyncpg 3
    (BEGIN, execute, rollback). A sync worker has no loop to come back to."""
    endpoint = Endpoint(name="q", cpu_ms=Fixed(3.0), io_ms=Fixed(5.0), db_cpu_ms=Fixed(0.0))

    def extra_ms(model, database):
        sc = bare(model, 1 if model == "async" else 8, cores=1, rate=230.0, duration=40.0, endpoint=endpoint)
        # a pool big enough to keep every connection it opens: no churn (tested on its own)
        rows = simulate(sc.with_knobs(database=database, pool_size=50, max_overflow=0), seed=3).rows
        return float(rows["db_ms"].mean()) - 5.0

    sqlite, postgres = extra_ms("async", "sqlite"), extra_ms("async", "postgresql")
    # The first pass waits behind the queue of new requests (M/D/1: ~3.3 ms at 69% load);
    # the two extra trips of aiosqlite add ~0.8 ms each (1.5 to 1.9 ms over seeds 0-4).
    assert postgres > 3.0
    assert sqlite - postgres > 1.0
    assert extra_ms("sync", "sqlite") == pytest.approx(0.0, abs=1e-6)


def test_an_event_loop_with_no_bound_on_admission_collapses_under_overload():
    """At 130% of capacity an asyncio loop starts every new request, and the round trips of
    those in progress wait behind them: few finish (measured on uvicorn: 16-41 req/s for
    the first seconds, against ~200 once the client's 1024 connections were all busy).
    A bound on what is in flight (the client's connections, or uvicorn's
    --limit-concurrency) keeps the throughput at capacity."""
    endpoint = Endpoint(name="q", cpu_ms=Fixed(3.0), io_ms=Fixed(5.0), db_cpu_ms=Fixed(0.5))
    base = bare("async", 1, cores=1, rate=1.0, duration=20.0, endpoint=endpoint)
    capacity = predict(base).capacity_rps
    over = base.with_knobs(rate_rps=1.3 * capacity)
    unbounded = simulate(over.with_knobs(client_connections=1_000_000), seed=1, allow_overcommit=True).summary
    bounded = simulate(over.with_knobs(client_connections=64), seed=1, allow_overcommit=True).summary
    assert unbounded.throughput_rps < 0.2 * capacity
    assert bounded.throughput_rps > 0.95 * capacity


def test_the_clients_connections_bound_what_is_in_flight():
    """One client connection to a server taking 10 ms: a closed loop of one, whatever the
    schedule asks (200 req/s), and latency from the scheduled time shows the wait."""
    endpoint = pure(cpu=Fixed(10.0), queries=0)
    one = bare("sync", 4, rate=200.0, duration=20.0, endpoint=endpoint).with_knobs(arrival="constant",
                                                                                  client_connections=1)
    r = simulate(one, seed=1, allow_overcommit=True).summary
    assert r.throughput_rps == pytest.approx(100.0, rel=0.01)
    assert r.p50_ms > 1000.0  # half the schedule is still waiting for the connection
    roomy = simulate(one.with_knobs(client_connections=4), seed=1, allow_overcommit=True).summary
    # no wait for a connection (that took a second above); the two cores are exactly full, and the
    # four workers share them: a burst stretches to at most twice its 10 ms, plus a tick
    assert roomy.throughput_rps == pytest.approx(200.0, rel=0.01) and roomy.p99_ms < 25.0


def test_connections_churn_only_where_concurrency_passes_the_pool_size():
    """A sync worker holds one connection for good; an event loop whose requests in flight
    pass pool_size keeps opening and closing the overflow (SQLAlchemy's QueuePool), and its
    DB phases grow with it. What stays open never passes pool_size + max_overflow."""
    endpoint = Endpoint(name="q", cpu_ms=Fixed(2.0), io_ms=Fixed(5.0), db_cpu_ms=Fixed(0.5))
    sync = simulate(bare("sync", 4, cores=1, rate=150.0, duration=20.0, endpoint=endpoint), seed=2).meta
    assert (sync["db_connections_opened"], sync["db_connections_closed"]) == (4, 0)
    busy = bare("async", 1, cores=1, rate=190.0, duration=20.0, endpoint=endpoint)
    churn = simulate(busy, seed=2)
    opened, closed = churn.meta["db_connections_opened"], churn.meta["db_connections_closed"]
    assert closed > 100
    assert 0 < opened - closed <= 5 + 10
    kept = simulate(busy.with_knobs(pool_size=15, max_overflow=0), seed=2)
    assert kept.meta["db_connections_closed"] == 0
    assert kept.summary.p95_ms < churn.summary.p95_ms
