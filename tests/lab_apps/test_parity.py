"""One fixed set of requests, valid and invalid, against both apps: the same status
codes and byte-identical bodies, on SQLite and on PostgreSQL with a Redis cache."""

import json

import httpx
import pytest

from simulator import Scenario

EVENT = b'{"type":"alert","severity":7,"payload":{"rule":"r-12"}}'
JSON = {"Content-Type": "application/json"}

# (method, path, body, headers)
REQUESTS = [
    ("GET", "/health", None, {}),
    ("GET", "/indicators/1", None, {}),
    ("GET", "/indicators/49999", None, {}),
    ("GET", "/indicators/1", None, {}),  # again: from the cache where there is one
    ("GET", "/indicators/50001", None, {}),
    ("GET", "/indicators/0", None, {}),
    ("GET", "/indicators/-3", None, {}),
    ("GET", "/indicators/1e3", None, {}),
    ("GET", "/indicators/%C3%A9", None, {}),
    ("GET", "/indicators/1?verbose=1", None, {}),
    ("GET", "/indicators", None, {}),
    ("GET", "/indicators?limit=3&offset=10", None, {}),
    ("GET", "/indicators?limit=100&offset=49990", None, {}),
    ("GET", "/indicators?limit=101", None, {}),
    ("GET", "/indicators?limit=", None, {}),
    ("GET", "/indicators?offset=-1", None, {}),
    ("GET", "/indicators?limit=2&limit=3", None, {}),
    ("GET", "/reports/summary", None, {}),
    ("GET", "/reports/summary?segment=123", None, {}),
    ("GET", "/reports/summary?segment=x", None, {}),
    ("GET", "/devices/sensor-1/events", None, {}),
    ("POST", "/devices/sensor-1/events", EVENT, {**JSON, "Idempotency-Key": "k-1"}),
    ("POST", "/devices/sensor-1/events", EVENT, {**JSON, "Idempotency-Key": "k-1"}),  # a retry: replayed
    ("POST", "/devices/sensor-1/events", b'{"type":"scan","severity":1}', {**JSON, "Idempotency-Key": "k-1"}),
    ("GET", "/devices/sensor-1/events", None, {}),
    ("POST", "/devices/sensor-1/events", b'{"type":"alert"}', JSON),
    ("POST", "/devices/sensor-1/events", b'{"type":"alert","severity":"high"}', JSON),
    ("POST", "/devices/sensor-1/events", b'{"type":"alert","severity":true}', JSON),
    ("POST", "/devices/sensor-1/events", b'{"type":"alert","severity":3,"extra":1}', JSON),
    ("POST", "/devices/sensor-1/events", b'{"type":"alert","severity":3,"payload":[1]}', JSON),
    ("POST", "/devices/sensor-1/events", b'[1,2]', JSON),
    ("POST", "/devices/sensor-1/events", b'{"type": "alert", "severity": 3', JSON),
    ("POST", "/devices/sensor-1/events", b'\xff\xfe', JSON),
    ("POST", "/devices/sensor-1/events", EVENT, {"Content-Type": "text/plain"}),
    ("POST", "/devices/sensor-1/events", EVENT, {}),
    ("POST", "/devices/sensor-1/events", b"{" + b" " * 20000 + b"}", JSON),
    ("POST", "/devices/sensor-1/events", EVENT, {**JSON, "Idempotency-Key": "x" * 200}),
    ("POST", "/devices/bad%20id/events", EVENT, JSON),
    ("GET", "/devices/" + "d" * 65 + "/events", None, {}),
    ("GET", "/nowhere", None, {}),
    ("GET", "/indicators/", None, {}),
    ("DELETE", "/indicators/1", None, {}),
    ("PUT", "/devices/sensor-1/events", EVENT, JSON),
    ("POST", "/indicators", b"{}", JSON),
]


def replay(client, nosql_url: str) -> list[tuple[int, bytes]]:
    httpx.post(f"{nosql_url}/reset")  # both apps start from the same empty store
    out = []
    for method, path, body, headers in REQUESTS:
        r = client.request(method, path, content=body, headers=headers)
        out.append((r.status_code, r.content))
    return out


def assert_same(flask_answers, fastapi_answers):
    for (method, path, _b, _h), a, b in zip(REQUESTS, flask_answers, fastapi_answers, strict=True):
        assert a == b, f"{method} {path}: flask {a[0]} {a[1][:200]!r} != fastapi {b[0]} {b[1][:200]!r}"
        assert a[0] < 500 or path == "/health", f"{method} {path} answered {a[0]}"
        json.loads(a[1])  # every body is JSON


@pytest.mark.parametrize("fastapi_model", ["async", "threadpool", "async-blocking"])
def test_both_apps_answer_byte_for_byte_the_same_on_sqlite(make_clients, nosql_url, fastapi_model):
    flask, fastapi = make_clients(Scenario().with_knobs(model="sync"), Scenario().with_knobs(model=fastapi_model))
    assert_same(replay(flask, nosql_url), replay(fastapi, nosql_url))


def test_both_apps_answer_the_same_on_postgresql_with_a_redis_cache(make_clients, nosql_url, postgres_url,
                                                                     redis_url):
    import redis

    cached = Scenario().with_knobs(cache="redis", ttl_s=60.0)
    flask, fastapi = make_clients(cached.with_knobs(model="threads", threads=4), cached.with_knobs(model="async"),
                                  database_url=postgres_url, redis_url=redis_url)
    redis.Redis.from_url(redis_url).flushdb()
    flask_answers = replay(flask, nosql_url)
    redis.Redis.from_url(redis_url).flushdb()
    assert_same(flask_answers, replay(fastapi, nosql_url))


def test_a_request_without_idempotency_key_differs_only_in_its_new_id(make_clients):
    flask, fastapi = make_clients()
    a = flask.post("/devices/d-9/events", content=EVENT, headers=JSON).json()["event"]
    b = fastapi.post("/devices/d-9/events", content=EVENT, headers=JSON).json()["event"]
    assert a.pop("id") != b.pop("id")
    assert a == b
