"""The model's round trips per request are the real driver's: each endpoint, on aiosqlite.

Under load every round trip of an async driver waits for the event loop's iteration in
progress, so a trip the model leaves out is latency it leaves out. Here the FastAPI app
serves each DB endpoint in-process while aiosqlite's calls to its connection thread are
counted, and the count must be simulator.model.db_round_trips for that endpoint.
"""

from __future__ import annotations

import dataclasses

import aiosqlite.core
import pytest

from simulator import Scenario
from simulator.model import db_round_trips
from simulator.scenario import Endpoint, Fixed

QUICK = {"cpu_ms": Fixed(0.0), "io_ms": Fixed(0.1), "db_cpu_ms": Fixed(0.0)}
ROUTES = {"indicator": "/indicators/7", "indicator_list": "/indicators?limit=5", "summary": "/reports/summary?segment=3"}


@pytest.mark.parametrize("name, queries", [("indicator", 1), ("indicator_list", 2), ("summary", 3),
                                           ("summary", 1)])
def test_aiosqlite_calls_per_request_are_the_models_round_trips(make_clients, monkeypatch, name, queries):
    endpoint = Endpoint(name=name, queries_per_request=queries, **QUICK)
    base = Scenario().with_knobs(model="async")
    scenario = dataclasses.replace(base, workload=dataclasses.replace(base.workload, endpoints=(endpoint,)))
    _, fastapi = make_clients(fastapi_scenario=scenario)
    assert fastapi.get(ROUTES[name]).status_code == 200  # opens the pool's first connection
    calls = []
    real = aiosqlite.core.Connection._execute

    async def counted(self, fn, *args, **kwargs):
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    assert fastapi.get(ROUTES[name]).status_code == 200
    assert len(calls) == db_round_trips(endpoint, "sqlite"), calls
