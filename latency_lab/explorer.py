"""Notebook 01's explorer: sync workers, threads and an event loop, side by side.

Sliders (workers, threads, CPU and I/O per request, the rate to read at)
drive one plotly ``FigureWidget``: each server model's simulated p50 and
p99 against offered load, up to where it saturates, with the formulas'
prediction dashed beside it. The callbacks are plain methods, so a test can
turn a slider and read the figure.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from simulator.distributions import Fixed
from simulator.scenario import REFERENCE_ENDPOINTS, Scenario

from .curves import Curve, capacity, load_curve

COLOURS = {"sync": "#d62728", "threads": "#ff7f0e", "async": "#1f77b4", "threadpool": "#2ca02c",
           "async-blocking": "#9467bd"}


def recipe(base: Scenario, cpu_ms: float, io_ms: float) -> Scenario:
    """``base`` with one endpoint: ``cpu_ms`` of handler CPU and one query waiting ``io_ms``."""
    endpoint = dataclasses.replace(REFERENCE_ENDPOINTS["indicator"], cpu_ms=Fixed(cpu_ms), io_ms=Fixed(io_ms))
    return dataclasses.replace(base, workload=dataclasses.replace(base.workload, endpoints=(endpoint,)))


def configure(model: str, workers: int, threads: int, cpu_ms: float, io_ms: float,
              base: Scenario | None = None) -> Scenario:
    """One configuration of the explorer as a Scenario (reference hardware by default)."""
    sc = recipe(base or Scenario(), cpu_ms, io_ms)
    return sc.with_knobs(model=model, workers=workers, threads=threads if model == "threads" else 1)


def curves(models, workers: int, threads: int, cpu_ms: float, io_ms: float, *, points: int = 7,
           base: Scenario | None = None, seed: int = 0) -> dict[str, Curve]:
    """Each model's curve on a shared rate axis, each stopping just past its own capacity."""
    scenarios = {m: configure(m, workers, threads, cpu_ms, io_ms, base) for m in models}
    caps = {m: capacity(sc) for m, sc in scenarios.items()}
    top = max(c for c in caps.values() if math.isfinite(c))
    grid = np.linspace(0.05, 1.0, points) * top
    out = {}
    for m, sc in scenarios.items():
        rates = [r for r in grid if r <= 1.02 * caps[m]] or [grid[0]]
        out[m] = load_curve(sc, rates, label=m, seed=seed, full_s=10.0, smoke_s=3.0)  # 10 s: a slider answers in ~3 s
    return out


class LoadCurveExplorer:
    """``LoadCurveExplorer().show()`` in a notebook; tests call ``update()`` via the sliders."""

    def __init__(self, models=("sync", "threads", "async"), *, workers: int = 4, threads: int = 4,
                 cpu_ms: float = 2.0, io_ms: float = 5.0, base: Scenario | None = None) -> None:
        import ipywidgets as w
        import plotly.graph_objects as go

        self.models = tuple(models)
        self.base = base
        style = {"description_width": "150px"}
        layout = w.Layout(width="460px")
        self.workers = w.IntSlider(value=workers, min=1, max=16, description="workers (processes)",
                                   style=style, layout=layout, continuous_update=False)
        self.threads = w.IntSlider(value=threads, min=1, max=32, description="threads (gthread)",
                                   style=style, layout=layout, continuous_update=False)
        self.cpu_ms = w.FloatSlider(value=cpu_ms, min=0.5, max=20.0, step=0.5, description="CPU ms / request",
                                    style=style, layout=layout, continuous_update=False)
        self.io_ms = w.FloatSlider(value=io_ms, min=0.0, max=100.0, step=1.0, description="DB wait ms / request",
                                   style=style, layout=layout, continuous_update=False)
        self.rate = w.FloatSlider(value=100.0, min=1.0, max=2000.0, step=1.0, description="read at req/s",
                                  style=style, layout=layout, continuous_update=False)
        self.readout = w.HTML()
        self.figure = go.FigureWidget()
        for m in self.models:
            colour = COLOURS.get(m, "#333")
            self.figure.add_scatter(name=f"{m} p99 (simulated)", mode="lines+markers", line={"color": colour})
            self.figure.add_scatter(name=f"{m} p50 (simulated)", mode="lines+markers",
                                    line={"color": colour, "dash": "dot"})
            self.figure.add_scatter(name=f"{m} p99 (formula)", mode="lines",
                                    line={"color": colour, "dash": "dash", "width": 1})
        self.figure.update_layout(xaxis_title="offered load, req/s", yaxis_title="latency, ms (log)",
                                  yaxis_type="log", height=480, margin={"t": 60},
                                  legend={"orientation": "h", "y": -0.2})
        self.curves: dict[str, Curve] = {}
        for control in (self.workers, self.threads, self.cpu_ms, self.io_ms):
            control.observe(self._recompute, names="value")
        self.rate.observe(self._reread, names="value")
        self.update()

    # -- callbacks ---------------------------------------------------------------
    def _recompute(self, _change=None) -> None:
        self.update()

    def _reread(self, _change=None) -> None:
        self._mark_rate()

    def update(self) -> None:
        """Re-simulate every model with the sliders' values and redraw."""
        self.curves = curves(self.models, self.workers.value, self.threads.value, self.cpu_ms.value,
                             self.io_ms.value, base=self.base)
        top = max(float(c.rates.max()) for c in self.curves.values())
        with self.figure.batch_update():
            for i, m in enumerate(self.models):
                c = self.curves[m]
                p99, p50, formula = self.figure.data[3 * i: 3 * i + 3]
                p99.x, p99.y = c.rates, c.p99_ms
                p50.x, p50.y = c.rates, c.p50_ms
                finite = np.isfinite(c.predicted["p99_ms"])
                formula.x, formula.y = c.rates[finite], c.predicted["p99_ms"][finite]
            self.figure.layout.title = (
                f"{self.workers.value} worker(s); {self.cpu_ms.value:g} ms CPU + {self.io_ms.value:g} ms DB wait "
                f"per request<br>saturates at " + ", ".join(
                    f"{m} {self.curves[m].capacity_rps:.0f}" for m in self.models) + " req/s")
        self.rate.max = max(2.0, round(top))
        self._mark_rate()

    def _mark_rate(self) -> None:
        rate = self.rate.value
        self.figure.layout.shapes = [{"type": "line", "x0": rate, "x1": rate, "yref": "paper", "y0": 0, "y1": 1,
                                      "line": {"color": "#888", "dash": "dot"}}]
        rows = []
        for m in self.models:
            c = self.curves[m]
            if rate > c.capacity_rps:
                rows.append(f"<tr><td>{m}</td><td colspan=3>saturated: capacity {c.capacity_rps:.0f} req/s "
                            f"({c.bottleneck})</td></tr>")
                continue
            at = c.at(rate)
            rows.append(f"<tr><td>{m}</td><td>{at['p50_ms']:.1f}</td><td>{at['p99_ms']:.1f}</td>"
                        f"<td>{c.capacity_rps:.0f} ({c.bottleneck})</td></tr>")
        self.readout.value = ("<table><tr><th>model</th><th>p50 ms</th><th>p99 ms</th><th>capacity req/s</th></tr>"
                              + "".join(rows) + f"</table><small>read at the simulated rate nearest {rate:g} req/s"
                              "</small>")

    def show(self):
        """The controls above the figure, for a notebook cell's last line."""
        import ipywidgets as w

        controls = w.VBox([self.workers, self.threads, self.cpu_ms, self.io_ms, self.rate])
        return w.VBox([w.HBox([controls, self.readout]), self.figure])
