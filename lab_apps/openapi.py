"""Write the OpenAPI document FastAPI generates to lab_apps/openapi.json, which the
Flask app serves: ``python -m lab_apps.openapi`` after changing lab_apps/contract.py."""

from __future__ import annotations

import json
from pathlib import Path

TARGET = Path(__file__).with_name("openapi.json")


def document() -> dict:
    from simulator import Scenario

    from .config import AppConfig
    from .fastapi_app import create_app

    config = AppConfig(app="fastapi", scenario=Scenario().with_knobs(model="async"),
                       database_url="sqlite:///unused.db", redis_url=None, nosql_url="http://127.0.0.1:9")
    return create_app(config).openapi()


if __name__ == "__main__":
    TARGET.write_text(json.dumps(document(), indent=2) + "\n")
    print(f"wrote {TARGET}")
