"""Scenarios: defaults, validation that names the field, TOML round trips, knobs."""

import dataclasses

import pytest

from simulator import (
    KNOBS,
    Exponential,
    Fixed,
    LogNormal,
    Scenario,
    ScenarioDoesNotFit,
    Server,
    Workload,
    simulate,
)


def test_defaults_are_the_reference_hardware_and_a_readable_repr():
    s = Scenario()
    assert "Hardware(api_cores=2, api_memory_mb=4096.0" in repr(s)
    assert repr(Exponential(2.0)) == "Exponential(mean=2.0)"
    assert repr(LogNormal(5.0, 0.5)) == "LogNormal(mean=5.0, cv=0.5)"


def test_scenarios_are_frozen_keyword_only_and_compare_by_value():
    s = Scenario()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.server.workers = 8  # type: ignore[misc]
    with pytest.raises(TypeError):
        Server("sync")  # type: ignore[misc]
    assert s.with_workers(8) == Scenario().with_workers(8)
    assert s.with_workers(8).server.workers == 8 and s.server.workers == 4


@pytest.mark.parametrize("make, words", [
    (lambda: Server(workers=0), ["Server.workers", "[1, 1024]", "0"]),
    (lambda: Server(model="gevent"), ["Server.model", "sync, threads, async", "gevent"]),
    (lambda: Server(model="sync", threads=4), ["Server.threads", "threads"]),
    (lambda: Server(model="sync", limit_concurrency=10), ["limit_concurrency", "uvicorn"]),
    (lambda: Workload(rate_rps=-5), ["Workload.rate_rps", "(0, 1e+06]", "-5"]),
    (lambda: Workload(rate_rps=0), ["Workload.rate_rps"]),
    (lambda: Scenario().with_knob("cache", "memcached"), ["Backends.cache", "off, local, redis"]),
    (lambda: Scenario().with_knob("ttl_s", 0), ["Backends.ttl_s"]),
    (lambda: Scenario().with_knob("io_ms", -1), ["io_ms", ">= 0"]),
    (lambda: Scenario().with_knob("queries_per_request", 2.5), ["queries_per_request", "integer"]),
    (lambda: Scenario().with_knob("wrokers", 2), ["unknown knob 'wrokers'", "workers"]),
    (lambda: Exponential(0), ["Exponential.mean", "> 0"]),
])
def test_bad_values_raise_value_error_naming_the_field_and_range(make, words):
    with pytest.raises(ValueError) as err:
        make()
    for word in words:
        assert word in str(err.value)


def test_toml_round_trip_keeps_every_knob():
    s = Scenario().with_knobs(model="threads", threads=4, cache="redis", ttl_s=60.0,
                              io_ms=LogNormal(5.0, 0.8), cpu_ms=Exponential(2.0), rate_rps=123.5)
    assert Scenario.from_toml(s.to_toml()) == s


def test_toml_names_endpoints_from_the_contract_and_overrides_their_recipe():
    s = Scenario.from_toml("""
        [server]
        model = "async"
        workers = 2
        [[workload.endpoints]]
        name = "summary"
        queries_per_request = 2
        [[workload.endpoints]]
        name = "indicator"
        weight = 3
        io_ms = { dist = "exponential", mean = 4.0 }
    """)
    summary, indicator = s.workload.endpoints
    assert summary.queries_per_request == 2 and summary.cpu_ms == Fixed(8.0)
    assert indicator.weight == 3 and indicator.io_ms == Exponential(4.0)


@pytest.mark.parametrize("text, words", [
    ("[server]\nworkres = 4\n", ["[server]", "unknown key(s) workres", "workers"]),
    ("[sever]\nworkers = 4\n", ["unknown scenario section(s): sever"]),
    ("[[workload.endpoints]]\nname = \"summary\"\nquerys = 3\n", ["querys"]),
    ("[server]\nworkers = 0\n", ["Server.workers"]),
    ("[workload]\nrate_rps = \"fast\"\n", ["Workload.rate_rps", "fast"]),
    ("[backends]\nnosql_latency_ms = { dist = \"gamma\", mean = 3 }\n", ["dist must be one of"]),
    ("[server\nworkers = 4\n", ["not valid TOML"]),
])
def test_bad_toml_is_rejected_with_the_key_named(text, words):
    with pytest.raises(ValueError) as err:
        Scenario.from_toml(text)
    for word in words:
        assert word in str(err.value)


def test_a_scenario_that_does_not_fit_in_memory_is_reported_not_run():
    big = Scenario().with_workers(80)
    assert any("memory" in p for p in big.problems())
    with pytest.raises(ScenarioDoesNotFit, match="80 workers need 4,830 MB"):
        simulate(big)
    assert simulate(big.with_knobs(duration_s=1.0), allow_overcommit=True).meta["fit_problems"]


def test_too_many_db_connections_for_postgres_is_reported():
    s = Scenario().with_knobs(model="async", workers=8, database="postgresql")  # 8 loops x (5 + 10) = 120 > 100
    assert any("max_connections 100" in p for p in s.problems())
    assert not s.with_knobs(database="sqlite").problems()  # SQLite has no connection limit
    assert not Scenario().with_knobs(model="sync", workers=50, database="postgresql").problems()  # one each


def test_every_knob_can_be_read_and_set():
    s = Scenario()
    for name in KNOBS:
        value = s.knob(name)
        assert s.with_knob(name, value) == s, name
