"""The API contract, in-process (httpx.WSGITransport / ASGITransport), for both apps."""

import json
import re
from pathlib import Path

import pytest

from lab_apps import domain
from simulator import Scenario

PHASES = ("cpu", "cache", "pool", "db", "nosql", "app")


def timing(response) -> dict[str, float]:
    header = response.headers["server-timing"]
    return {m.group(1): float(m.group(2)) for m in re.finditer(r"(\w+);dur=([0-9.]+)", header)}


@pytest.fixture
def apps(make_clients):
    return dict(zip(("flask", "fastapi"), make_clients(), strict=True))


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_every_response_says_where_its_time_went(apps, app):
    r = apps[app].get("/indicators/42")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    t = timing(r)
    assert tuple(t) == PHASES
    assert t["cpu"] >= 1.5  # the recipe's 2 ms of real CPU work
    assert t["db"] >= 5.0  # one query with a 5 ms server-side wait
    assert t["app"] >= t["cpu"] + t["db"]
    assert r.json() == {"indicator": domain.indicator_row(42)}


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_config_reports_the_knobs_the_process_runs_with(apps, app):
    c = apps[app].get("/config").json()
    assert c["app"] == app and c["model"] == ("sync" if app == "flask" else "async")
    assert c["pool"] == {"pool_size": 5, "max_overflow": 10, "pool_timeout_s": 30.0}
    assert c["database"] == "sqlite" and c["process"]["cpu_affinity"]
    assert Scenario.from_dict(c["scenario"]).server.model == c["model"]


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_the_n_plus_one_knob_multiplies_the_queries(make_clients, app):
    one = Scenario().with_knobs(queries_per_request=1)
    many = Scenario().with_knobs(queries_per_request=6)
    (f1, a1), (f6, a6) = make_clients(one.with_knobs(model="sync"), one.with_knobs(model="async")), \
        make_clients(many.with_knobs(model="sync"), many.with_knobs(model="async"))
    c1, c6 = (f1, f6) if app == "flask" else (a1, a6)
    assert timing(c6.get("/indicators/5"))["db"] > 5 * 5.0  # six waits of 5 ms
    assert timing(c1.get("/indicators/5"))["db"] < 6 * 5.0


@pytest.mark.parametrize("cache", ["local"])
def test_a_cache_hit_skips_the_database(make_clients, cache):
    scenario = Scenario().with_knobs(cache=cache, ttl_s=60.0)
    for client in make_clients(scenario.with_knobs(model="sync"), scenario.with_knobs(model="async")):
        first, second = client.get("/indicators/77"), client.get("/indicators/77")
        assert first.content == second.content
        assert timing(first)["db"] > 4.0 and timing(second)["db"] == 0.0


def test_the_redis_cache_is_shared_between_the_apps(make_clients, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    scenario = Scenario().with_knobs(cache="redis", ttl_s=60.0)
    flask, fastapi = make_clients(scenario.with_knobs(model="sync"), scenario.with_knobs(model="async"),
                                  redis_url=redis_url)
    assert timing(flask.get("/reports/summary?segment=9"))["db"] > 0
    assert timing(fastapi.get("/reports/summary?segment=9"))["db"] == 0.0  # the other process cached it


def test_both_apps_serve_the_same_openapi_document(apps):
    fastapi_doc = apps["fastapi"].get("/openapi.json").json()
    assert apps["flask"].get("/openapi.json").json() == fastapi_doc
    committed = json.loads((Path(__file__).parents[2] / "lab_apps" / "openapi.json").read_text())
    assert committed == fastapi_doc, "regenerate lab_apps/openapi.json: python -m lab_apps.openapi"
    assert set(fastapi_doc["paths"]) == {"/health", "/config", "/indicators/{id}", "/indicators",
                                         "/reports/summary", "/devices/{device_id}/events"}


@pytest.mark.parametrize("app", ["flask", "fastapi"])
def test_idempotency_key_replays_the_first_response(apps, app, nosql_url):
    client = apps[app]
    body = b'{"type":"login","severity":0}'
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"once-{app}"}
    first = client.post(f"/devices/idem-{app}/events", content=body, headers=headers)
    again = client.post(f"/devices/idem-{app}/events", content=body, headers=headers)
    assert first.status_code == again.status_code == 201 and first.content == again.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(client.get(f"/devices/idem-{app}/events").json()["events"]) == 1


def test_cpu_work_is_measured_in_cpu_time():
    import time

    from lab_apps import cpu_work

    cpu_work.calibrate()  # as every app process does at start (adapter.start_process)
    for ms in (0.5, 2.0, 10.0):
        t0 = time.thread_time()
        spins, cpu_s = cpu_work.burn(ms)
        used = (time.thread_time() - t0) * 1000
        assert ms <= used < ms + 0.5
        # it reports what it did: the CPU it took, and loop iterations at the loop's speed
        assert ms <= cpu_s * 1000 <= used
        speed = spins / (cpu_s * 1000)
        assert cpu_work.iterations_per_ms() / 3 < speed < cpu_work.iterations_per_ms() * 3
    assert cpu_work.burn(0) == (0, 0.0)
