"""The notebooks in a real browser: JupyterLab runs notebook 01 and its slider moves the plot; Voila
renders the what-if dashboard and its controls move the plot. Headless Debian chromium, driven by
Playwright with executable_path (no browser download). Screenshots go to build/screenshots/.

Skipped, with the reason, where no Chromium is found; LAB_REQUIRE_SERVICES=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lab_apps.launcher import free_port, stop_group

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("LAB_CHROMIUM") or next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        message = ("no Chromium found (looked for chromium, chromium-browser, google-chrome and $LAB_CHROMIUM); "
                   "on Debian: apt-get install chromium")
        if os.environ.get("LAB_REQUIRE_SERVICES") == "1":
            pytest.fail(message + "; LAB_REQUIRE_SERVICES=1 makes that a failure")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def _serve(cmd: list[str], url: str, tmp: Path, ready_path: str | None, timeout_s: float = 120.0):
    """Start a Jupyter server in its own process group; return it once ``url + ready_path`` answers."""
    env = {**os.environ, "LAB_SMOKE": "1", "JUPYTER_CONFIG_DIR": str(tmp / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
           "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"), "PYTHONUNBUFFERED": "1",
           # as in an activated environment: the proxy runs `latency-lab` from the PATH
           "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    log = open(tmp / "server.log", "w")  # noqa: SIM115 - closed by _stop
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log = log
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[2]} exited: {(tmp / 'server.log').read_text()[-2000:]}")
        try:
            if ready_path is None:  # the port is open: enough where a GET would run a notebook (Voila)
                with socket.create_connection(("127.0.0.1", httpx.URL(url).port), timeout=2):
                    return proc
            elif httpx.get(url + ready_path, timeout=2).status_code < 500:
                return proc
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.5)
    _stop(proc)
    raise RuntimeError(f"{cmd[2]} did not answer within {timeout_s:g} s: {(tmp / 'server.log').read_text()[-2000:]}")


def _stop(proc) -> None:
    stop_group(proc, grace_s=15)
    proc.log.close()


def _root_flag() -> list[str]:
    return ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jupyterlab")
    (tmp / "config").mkdir()
    # the Binder proxy settings, so the test also opens the FastAPI app's /docs through the proxy
    shutil.copy(ROOT / "binder" / "jupyter_server_config.json", tmp / "config" / "jupyter_server_config.json")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve([sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                   "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
                   f"--ServerApp.root_dir={ROOT / 'notebooks'}", *_root_flag()], url, tmp, "/api/status")
    yield url
    _stop(proc)


def _plot_data(page, index: int = -1):
    # _fullData: plotly's decoded traces (data may still hold the base64 'bdata' arrays plotly 6+ sends)
    return page.evaluate(f"""() => {{
        const plots = [...document.querySelectorAll('.js-plotly-plot')];
        const gd = plots.at({index});
        return gd && gd._fullData ? gd._fullData.map(t => ({{x: Array.from(t.x || []), y: Array.from(t.y || [])}})) : null;
    }}""")


def _wait_for_reach(page, index: int, beyond: float, timeout_ms: int = 120_000) -> None:
    """Wait until the first trace of plot ``index`` reaches past ``beyond`` on x (the figure was redrawn)."""
    try:
        page.wait_for_function(f"""() => {{ const gd = document.querySelectorAll('.js-plotly-plot')[{index}];
            return gd && gd._fullData && gd._fullData[0] && gd._fullData[0].x && Math.max(...Array.from(gd._fullData[0].x)) > {beyond}; }}""", timeout=timeout_ms)
    except Exception:
        page.screenshot(path=str(SHOTS / "failed.png"), full_page=True)
        raise


def _run_all(page, attempts: int = 3) -> None:
    """Run > Run All Cells, once the kernel is idle; again if no cell started (a click that landed
    while JupyterLab was still settling is lost)."""
    for _ in range(attempts):
        page.locator("#jp-main-statusbar").get_by_text("Idle").first.wait_for(timeout=90_000)
        page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
        try:  # the first code cell gets an execution count once the run has begun
            page.wait_for_function("() => [...document.querySelectorAll('.jp-InputPrompt')]"
                                   ".some(p => /\\[[0-9*]+\\]/.test(p.textContent))", timeout=20_000)
            return
        except Exception:
            page.keyboard.press("Escape")
    raise AssertionError(f"Run All Cells did not start after {attempts} attempts")


def test_notebook_01_runs_and_the_workers_slider_moves_the_plot(browser, jupyterlab):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{jupyterlab}/lab/tree/01_sync_workers_vs_event_loop.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    _run_all(page)
    # the explorer is the cell with the sliders; its figure is the notebook's second plot
    slider = page.locator(".widget-slider", has_text="workers (processes)").first
    slider.wait_for(timeout=180_000)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=120_000)
    page.wait_for_function("""() => { const gd = document.querySelectorAll('.js-plotly-plot')[1];
                                     return gd && gd._fullData && gd._fullData[0] && gd._fullData[0].x && gd._fullData[0].x.length > 0; }""",
                           timeout=60_000)
    before = _plot_data(page, 1)
    readout = slider.locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type("8")
    page.keyboard.press("Enter")
    _wait_for_reach(page, 1, 1.5 * max(before[0]["x"]))
    after = _plot_data(page, 1)
    # 8 sync workers carry about twice what 4 do: the sync curve reaches further right
    assert max(after[0]["x"]) > 1.5 * max(before[0]["x"])
    slider.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "notebook_01_explorer.png"), full_page=False)
    page.close()


def test_the_fastapi_app_opens_through_the_jupyter_proxy(jupyterlab):
    """Binder's route to the app's /docs: jupyter-server-proxy starts it, FastAPI's root_path is right."""
    docs = httpx.get(f"{jupyterlab}/fastapi-app/docs", timeout=90, follow_redirects=True)
    assert docs.status_code == 200 and "/fastapi-app/openapi.json" in docs.text
    schema = httpx.get(f"{jupyterlab}/fastapi-app/openapi.json", timeout=30)
    assert schema.status_code == 200 and "/indicators/{indicator_id}" in json.dumps(schema.json()["paths"]) \
        or "/indicators" in json.dumps(schema.json()["paths"])


def test_the_voila_dashboard_answers_its_controls(browser, tmp_path):
    SHOTS.mkdir(parents=True, exist_ok=True)
    (tmp_path / "config").mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve([sys.executable, "-m", "voila", str(ROOT / "notebooks" / "what_if_dashboard.ipynb"),
                   "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1"], url, tmp_path, None)
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(url, timeout=120_000)
        page.wait_for_function("""() => { const gd = document.querySelector('.js-plotly-plot');
                                         return gd && gd._fullData && gd._fullData[0] && gd._fullData[0].x && gd._fullData[0].x.length > 0; }""",
                               timeout=120_000)
        assert page.locator(".jp-InputArea-editor, .jp-CodeMirrorEditor").count() == 0  # code hidden
        before = _plot_data(page, 0)
        workers = page.locator(".widget-inline-hbox", has_text="workers").first.locator("input")
        workers.fill("10")
        workers.press("Enter")
        _wait_for_reach(page, 0, 1.5 * max(before[0]["x"]))
        after = _plot_data(page, 0)
        assert max(after[0]["x"]) > 1.5 * max(before[0]["x"])  # 10 sync workers carry about twice 5
        assert "capacity" in page.content()
        page.screenshot(path=str(SHOTS / "what_if_dashboard.png"), full_page=True)
        page.close()
    finally:
        _stop(proc)


def test_the_dashboard_renders_at_binders_voila_address(jupyterlab):
    """The README's second badge opens voila/render/notebooks/what_if_dashboard.ipynb on Binder."""
    page = httpx.get(f"{jupyterlab}/voila/render/what_if_dashboard.ipynb", timeout=180)
    assert page.status_code == 200 and "What-if dashboard" in page.text
