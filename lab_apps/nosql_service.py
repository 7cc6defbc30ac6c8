"""The NoSQL capacity service: a DynamoDB-style store with provisioned capacity.

One process (uvicorn, one worker, one event loop), so its token buckets are
shared by every API worker, like a table's capacity is shared by every
client. Reads and writes spend one unit each from buckets refilled at
``nosql_read_units`` and ``nosql_write_units`` per second, saving up to
``nosql_burst_s`` seconds of unused capacity; past it a call gets HTTP 400
with DynamoDB's ProvisionedThroughputExceededException. Every call takes
``nosql_latency_ms`` first, throttled or not. The buckets are the model's
own (simulator.backends.TokenBucket), on the wall clock.

Wire protocol (JSON over HTTP, POST):
  /get  {"key": DEVICE}                           -> {"items": [...]}
  /put  {"key": DEVICE, "item": {...}, "if_absent": ID or null}
        -> {"ok": true}, or 400 ConditionalCheckFailedException with the existing item
  GET /health, GET /stats, POST /reset (tests)
"""

from __future__ import annotations

import asyncio
import json
import os
import time

from simulator.backends import TokenBucket
from simulator.distributions import Draws
from simulator.scenario import Scenario

THROTTLED = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
CONDITION_FAILED = "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException"
MAX_ITEMS_RETURNED = 50  # newest first, like a Query with Limit and ScanIndexForward=false


class Store:
    def __init__(self, scenario: Scenario) -> None:
        import numpy as np

        h, b = scenario.hardware, scenario.backends
        now = time.monotonic()
        self.reads = TokenBucket(h.nosql_read_units, h.nosql_burst_s, h.nosql_start_burst_s, now=now)
        self.writes = TokenBucket(h.nosql_write_units, h.nosql_burst_s, h.nosql_start_burst_s, now=now)
        self.latency_ms = Draws(b.nosql_latency_ms, np.random.default_rng(12345))
        self.items: dict[str, list[dict]] = {}
        self.ids: dict[str, dict] = {}  # event id -> item, for conditional puts
        self.scenario = scenario

    def stats(self) -> dict:
        return {"reads": self.reads.taken, "writes": self.writes.taken,
                "throttled_reads": self.reads.throttled, "throttled_writes": self.writes.throttled,
                "items": sum(len(v) for v in self.items.values()),
                "read_units": self.reads.rate, "write_units": self.writes.rate}


def create_app(scenario: Scenario | None = None):
    """An ASGI app (Starlette) holding one Store."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    if scenario is None:
        path = os.environ.get("LAB_SCENARIO")
        scenario = Scenario.load(path) if path else Scenario()
    state = {"store": Store(scenario)}

    def error(kind: str, message: str, **extra) -> JSONResponse:
        return JSONResponse({"__type": kind, "message": message, **extra}, status_code=400)

    async def body(request: Request) -> dict:
        try:
            doc = json.loads(await request.body())
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not isinstance(doc.get("key"), str):
            raise ValueError("body must be a JSON object with a string key")
        return doc

    async def spend(bucket: TokenBucket) -> JSONResponse | None:
        """One unit from ``bucket``, then the call's latency, throttled or not; the error if throttled."""
        ok = bucket.take(time.monotonic())
        await asyncio.sleep(state["store"].latency_ms() / 1000)
        if ok:
            return None
        return error(THROTTLED, "The level of configured provisioned throughput for the table was exceeded.")

    async def get(request: Request):
        store = state["store"]
        try:
            doc = await body(request)
        except ValueError as exc:
            return error("ValidationException", str(exc))
        if (throttled := await spend(store.reads)) is not None:
            return throttled
        return JSONResponse({"items": store.items.get(doc["key"], [])[-MAX_ITEMS_RETURNED:][::-1]})

    async def put(request: Request):
        store = state["store"]
        try:
            doc = await body(request)
            if not isinstance(doc.get("item"), dict) or not isinstance(doc["item"].get("id"), str):
                raise ValueError("item must be a JSON object with a string id")
        except ValueError as exc:
            return error("ValidationException", str(exc))
        if (throttled := await spend(store.writes)) is not None:
            return throttled
        item = doc["item"]
        # check-and-write with no await between: atomic on the one event loop
        if doc.get("if_absent") and item["id"] in store.ids:
            return error(CONDITION_FAILED, "The conditional request failed", item=store.ids[item["id"]])
        store.items.setdefault(doc["key"], []).append(item)
        store.ids[item["id"]] = item
        return JSONResponse({"ok": True})

    async def health(_request: Request):
        return JSONResponse({"status": "ok"})

    async def stats(_request: Request):
        return JSONResponse(state["store"].stats())

    async def reset(_request: Request):
        state["store"] = Store(state["store"].scenario)
        return JSONResponse({"ok": True})

    return Starlette(routes=[
        Route("/get", get, methods=["POST"]), Route("/put", put, methods=["POST"]),
        Route("/health", health), Route("/stats", stats), Route("/reset", reset, methods=["POST"]),
    ])
