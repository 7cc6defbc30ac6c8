"""binder/start, as Binder runs it: as an ordinary user, it starts PostgreSQL and Redis on loopback,
exports where they are, and hands over to the command (Jupyter). Ports are free ones here."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from lab_apps.launcher import free_port

ROOT = Path(__file__).resolve().parents[1]


def _postgres_bin() -> str | None:
    if shutil.which("initdb"):
        return str(Path(shutil.which("initdb")).parent)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))  # Debian keeps them off the PATH
    return str(Path(found[-1]).parent) if found else None


def test_binder_start_runs_postgresql_and_redis_without_root():
    pg_bin = _postgres_bin()
    if pg_bin is None or not shutil.which("redis-server"):
        message = "binder/start needs initdb and redis-server (conda-forge postgresql and redis-server on Binder)"
        if os.environ.get("LAB_REQUIRE_SERVICES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    # a directory of its own that another user can enter (pytest's tmp_path is private to root)
    top = Path(tempfile.mkdtemp(prefix="latency-lab-binder-"))
    os.chmod(top, 0o755)
    home = top / "home"
    home.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root, and Binder's user is not root
        shutil.chown(home, "nobody")
        prefix = ["runuser", "-u", "nobody", "--"]
    pg_port, redis_port = free_port(), free_port()
    env = ["env", f"HOME={home}", f"PATH={pg_bin}:{os.environ['PATH']}", f"LAB_PG_PORT={pg_port}",
           f"LAB_REDIS_PORT={redis_port}"]
    probe = (f'echo "$LAB_POSTGRES_URL|$REDIS_URL|$LAB_MODE"; psql -h 127.0.0.1 -p {pg_port} -U postgres -d test '
             f'-tAc "select 40 + 2"; redis-cli -p {redis_port} ping')
    try:
        out = subprocess.run([*prefix, *env, "bash", str(ROOT / "binder" / "start"), "bash", "-c", probe],
                             capture_output=True, text=True, timeout=120)
        lines = out.stdout.split()
        assert lines[0] == (f"postgresql://postgres@127.0.0.1:{pg_port}/test|redis://127.0.0.1:{redis_port}/1"
                            "|replay"), out.stderr
        assert lines[1:] == ["42", "PONG"], out.stderr
    finally:
        subprocess.run([*prefix, *env, "pg_ctl", "-D", str(home / ".latency-lab" / "pgdata"), "stop", "-m", "fast"],
                       capture_output=True, timeout=60)
        subprocess.run(["redis-cli", "-p", str(redis_port), "shutdown", "nosave"], capture_output=True, timeout=30)
        shutil.rmtree(top, ignore_errors=True)
