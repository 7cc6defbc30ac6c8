"""What one app process runs with: the scenario's knobs plus where the backends are.

The launcher writes the scenario to a TOML file and passes its path in
LAB_SCENARIO, so every worker process reads the very knobs the model
simulates, under the same names and units. Backends come from the
environment: DATABASE_URL (SQLite in LAB_DATA_DIR when unset), REDIS_URL
(needed only for cache = "redis") and LAB_NOSQL_URL (the capacity service).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from simulator.scenario import REFERENCE_ENDPOINTS, Endpoint, Scenario

DEFAULT_NOSQL_URL = "http://127.0.0.1:8701"


def default_data_dir() -> Path:
    return Path(os.environ.get("LAB_DATA_DIR") or Path(tempfile.gettempdir()) / "latency-lab")


@dataclass(frozen=True)
class AppConfig:
    app: str  # "flask" or "fastapi"
    scenario: Scenario
    database_url: str  # as given: sqlite:///... or postgresql://...
    redis_url: str | None
    nosql_url: str

    @classmethod
    def from_env(cls, app: str) -> AppConfig:
        path = os.environ.get("LAB_SCENARIO")
        scenario = Scenario.load(path) if path else Scenario()
        db = os.environ.get("DATABASE_URL") or f"sqlite:///{default_data_dir() / 'lab.db'}"
        config = cls(app=app, scenario=scenario, database_url=db,
                     redis_url=os.environ.get("REDIS_URL") or None,
                     nosql_url=(os.environ.get("LAB_NOSQL_URL") or DEFAULT_NOSQL_URL).rstrip("/"))
        config.check()
        return config

    def check(self) -> None:
        if self.scenario.backends.cache == "redis" and not self.redis_url:
            raise ValueError("cache = 'redis' needs REDIS_URL (for example redis://127.0.0.1:6379/0)")
        if not self.database_url.startswith(("sqlite:", "postgresql:", "postgres:")):
            raise ValueError(f"DATABASE_URL must be sqlite:///PATH or postgresql://..., got {self.database_url!r}")
        wanted = self.scenario.backends.database
        given = "sqlite" if self.database_url.startswith("sqlite:") else "postgresql"
        if wanted != given:
            raise ValueError(f"the scenario says database = {wanted!r} but DATABASE_URL is {given}: "
                             f"{self.database_url}")

    @property
    def model(self) -> str:
        return self.scenario.server.model

    def recipe(self, name: str) -> Endpoint:
        """The endpoint's recipe from the scenario, else the contract's default."""
        for endpoint in self.scenario.workload.endpoints:
            if endpoint.name == name:
                return endpoint
        return REFERENCE_ENDPOINTS[name]
