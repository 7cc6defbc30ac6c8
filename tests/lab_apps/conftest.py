"""Fixtures for the lab apps: the data directory, the NoSQL service, in-process
clients for both apps, and the real PostgreSQL and Redis where they run.

PostgreSQL and Redis tests skip with the reason when the service is not
reachable; LAB_REQUIRE_SERVICES=1 (as in CI) turns that skip into a failure.
"""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from lab_apps import db, fastapi_app, flask_app, launcher
from lab_apps.config import AppConfig
from simulator import Scenario

REQUIRE_SERVICES = os.environ.get("LAB_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get("LAB_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _unavailable(what: str, exc: Exception):
    message = f"{what} is not reachable ({type(exc).__name__}: {exc})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; LAB_REQUIRE_SERVICES=1 makes that a failure")
    pytest.skip(message)


@pytest.fixture(scope="session", autouse=True)
def data_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("lab-data")
    os.environ["LAB_DATA_DIR"] = str(path)
    db.ensure_dataset(f"sqlite:///{path / 'lab.db'}")
    return path


@pytest.fixture(scope="session")
def sqlite_url(data_dir):
    return f"sqlite:///{data_dir / 'lab.db'}"


@pytest.fixture(scope="session")
def postgres_url():
    try:
        db.ensure_dataset(POSTGRES_URL)
    except Exception as exc:  # any failure to reach or prepare it
        _unavailable(f"PostgreSQL at {POSTGRES_URL}", exc)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_url():
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except Exception as exc:
        _unavailable(f"Redis at {REDIS_URL}", exc)
    return REDIS_URL


@pytest.fixture(scope="session")
def nosql_url():
    with launcher.nosql_service(Scenario()) as url:
        yield url


class AsgiClient:
    """A blocking face on httpx.AsyncClient + ASGITransport, on one event loop of its own
    (the app's async engine and clients belong to the loop they were made on)."""

    def __init__(self, app) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = app
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://lab")
        self._lifespan = app.router.lifespan_context(app)
        self.loop.run_until_complete(self._lifespan.__aenter__())

    def request(self, method: str, url: str, **kwargs) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self.loop.run_until_complete(self._lifespan.__aexit__(None, None, None))
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def pep3333_path(wsgi_app):
    """httpx's WSGITransport puts the decoded path in PATH_INFO; PEP 3333 wants the
    UTF-8 bytes carried as Latin-1, as gunicorn sends them. Restore that, so a
    non-ASCII path reaches Flask in-process as it does under a real server."""

    def app(environ, start_response):
        environ["PATH_INFO"] = environ["PATH_INFO"].encode("utf-8").decode("latin-1")
        return wsgi_app(environ, start_response)

    return app


def config(app: str, scenario: Scenario, *, database_url: str, nosql_url: str, redis_url: str | None = None):
    scenario = scenario.with_knobs(database="sqlite" if database_url.startswith("sqlite") else "postgresql")
    return AppConfig(app=app, scenario=scenario, database_url=database_url, redis_url=redis_url, nosql_url=nosql_url)


@pytest.fixture
def make_clients(sqlite_url, nosql_url):
    """make_clients(flask_scenario, fastapi_scenario, database_url=..., redis_url=...) -> (flask, fastapi)."""
    opened: list = []

    def make(flask_scenario: Scenario | None = None, fastapi_scenario: Scenario | None = None, *,
             database_url: str | None = None, redis_url: str | None = None):
        base = Scenario()
        app = flask_app.create_app(config(
            "flask", flask_scenario or base.with_knobs(model="sync"), database_url=database_url or sqlite_url,
            nosql_url=nosql_url, redis_url=redis_url))
        fl = httpx.Client(transport=httpx.WSGITransport(app=pep3333_path(app)), base_url="http://lab")
        opened.append(app.extensions["latency_lab_driver"])
        fa = AsgiClient(fastapi_app.create_app(config(
            "fastapi", fastapi_scenario or base.with_knobs(model="async"), database_url=database_url or sqlite_url,
            nosql_url=nosql_url, redis_url=redis_url)))
        opened.extend([fl, fa])
        return fl, fa

    yield make
    for client in opened:
        client.close()
