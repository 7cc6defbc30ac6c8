"""pyproject.toml, environment.yml and binder/environment.yml name the same packages."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"redis": "redis-py", "dask[distributed]": "dask", "sqlalchemy[asyncio]": "sqlalchemy"}  # PyPI -> conda


def pypi_names() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + project["optional-dependencies"]["dev"]
    names = {re.split(r"[<>=!~ ]", spec, maxsplit=1)[0] for spec in specs}
    return {CONDA_NAMES.get(n, re.sub(r"\[.*\]", "", n)).lower() for n in names}


def conda_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        m = re.match(r"\s+- ([A-Za-z0-9_.\-\[\]]+)", line)
        if m and m.group(1) not in ("python", "pip", "pip:"):
            names.add(re.split(r"[<>=!~]", m.group(1), maxsplit=1)[0].lower())
    return names


def test_root_environment_has_every_pyproject_package():
    assert pypi_names() <= conda_names(ROOT / "environment.yml")


def test_binder_environment_matches_the_root_one():
    assert conda_names(ROOT / "binder" / "environment.yml") == conda_names(ROOT / "environment.yml")
