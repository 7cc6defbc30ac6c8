"""pyproject.toml, environment.yml and binder/environment.yml name the same packages, with the same
lower bounds; binder/ adds only the services it starts itself; its scripts are executable."""

import os
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"redis": "redis-py", "dask[distributed]": "dask", "sqlalchemy[asyncio]": "sqlalchemy",
               "psycopg[binary]": "psycopg"}  # PyPI -> conda-forge
BINDER_ONLY = {"postgresql", "redis-server"}  # servers binder/start runs without root


def _split(spec: str) -> tuple[str, str | None]:
    m = re.match(r"([A-Za-z0-9_.\-\[\]]+)\s*(?:>=\s*([0-9][0-9.]*))?", spec)
    return m.group(1), m.group(2)


def pypi_packages() -> dict[str, str | None]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out = {}
    for spec in project["dependencies"] + project["optional-dependencies"]["dev"]:
        name, low = _split(spec)
        out[CONDA_NAMES.get(name, re.sub(r"\[.*\]", "", name)).lower()] = low
    return out


def conda_packages(path: Path) -> dict[str, str | None]:
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"\s+- ([^#\s][^#]*)", line)
        if m and m.group(1).strip() not in ("python=3.11", "pip", "pip:"):
            name, low = _split(m.group(1).strip())
            out[name.lower()] = low
    return out


def test_root_environment_has_every_pyproject_package_with_the_same_lower_bound():
    conda = conda_packages(ROOT / "environment.yml")
    for name, low in pypi_packages().items():
        assert name in conda, f"environment.yml lacks {name}"
        assert conda[name] == low, f"{name}: pyproject says >={low}, environment.yml >={conda[name]}"


def test_binder_environment_is_the_root_one_plus_its_services():
    binder = conda_packages(ROOT / "binder" / "environment.yml")
    root = conda_packages(ROOT / "environment.yml")
    assert set(binder) - set(root) == BINDER_ONLY
    assert {k: v for k, v in binder.items() if k not in BINDER_ONLY} == root


def test_binder_scripts_are_executable_and_install_the_lab():
    for name in ("postBuild", "start"):
        path = ROOT / "binder" / name
        assert path.is_file() and os.access(path, os.X_OK), f"binder/{name} must exist and be executable"
    assert "pip install --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()
    assert 'exec "$@"' in (ROOT / "binder" / "start").read_text()  # start must hand over to Jupyter
