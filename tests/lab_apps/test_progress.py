"""The load generator's progress bar, where a learner sees it: a terminal and a notebook."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .json_stub import JsonOk, serving

REQUESTS = 60  # 30 req/s, constant, for 2 s: the notebook's bar must end at 60/60


@pytest.fixture
def ok_server():
    with serving(JsonOk, threaded=True) as url:
        yield url


def test_the_terminal_shows_a_bar_that_ends_at_every_request(ok_server):
    """`latency-lab load` in a terminal: the bar is drawn on stderr (stdout stays for --json)."""
    reader, writer = pty.openpty()
    try:
        cli = Path(sys.executable).with_name("latency-lab")
        done = subprocess.run([str(cli), "load", ok_server, "--rate", "30", "--duration", "2", "--warmup", "0",
                               "--json"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=writer,
                              timeout=60, check=False)
        os.close(writer)
        writer = None
        seen = b""
        while True:
            try:
                chunk = os.read(reader, 65536)
            except OSError:  # the pty's other end is closed: all read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if writer is not None:
            os.close(writer)
        os.close(reader)
    assert done.returncode == 0, done.stdout
    sent = json.loads(done.stdout)["requests"]  # Poisson arrivals, seed 0: about 60
    assert 40 < sent < 80
    frames = seen.decode().replace("\n", "\r").split("\r")
    bars = [f for f in frames if f.endswith("requests")]
    assert len(bars) >= 3, seen  # it moved: redrawn 4 times a second
    assert bars[-1] == f"[{'#' * 30}] {sent}/{sent} requests"


def test_a_notebook_shows_a_widget_bar_that_ends_at_every_request(ok_server, tmp_path):
    """In a kernel the bar is an ipywidgets IntProgress, updated from the generator's own
    thread; the widget state the kernel sent back is what the learner's browser drew."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "from lab_apps.loadgen import load\n"
        "from simulator import Scenario\n"
        f"r = load({ok_server!r}, Scenario().with_knobs(arrival='constant', rate_rps=30.0, duration_s=2.0,"
        " warmup_s=0.0))\n"
        "print(r.summary.requests)")]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}},
                   store_widget_state=True).execute()
    outputs = nb.cells[0].outputs
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs), outputs
    assert any(o.get("text", "").strip() == str(REQUESTS) for o in outputs), outputs
    models = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"].values()
    bar = next(m["state"] for m in models if m["model_name"] == "IntProgressModel")
    label = next(m["state"] for m in models if m["model_name"] == "LabelModel")
    assert bar["value"] == bar["max"] == REQUESTS
    assert label["value"] == f"{REQUESTS}/{REQUESTS} requests"
