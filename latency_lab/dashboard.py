"""The what-if dashboard (rendered by Voila, code hidden): two configurations side by side.

Each panel picks a server model, workers, cache, pool and NoSQL capacity;
the dashboard shows the formulas' p50/p95/p99 at the chosen rate, the
capacity, the bottleneck, and the highest rate that keeps p99 under the
target, for both. It answers at once because it uses ``predict`` (the
analytic companion, checked against the simulation in the test suite); a
button runs the simulation for the two configurations when wanted.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.analytic import predict
from simulator.model import simulate
from simulator.scenario import Scenario

from .curves import short


def max_rate_predicted(scenario: Scenario, p99_ms: float, *, tolerance: float = 0.005) -> float:
    """The highest open-loop rate whose predicted p99 is under ``p99_ms`` (bisection on predict)."""
    hi = predict(scenario.with_knobs(rate_rps=1.0)).capacity_rps
    if not math.isfinite(hi):
        raise ValueError("the scenario has no finite capacity")
    lo = 0.0
    while hi - lo > tolerance * max(hi, 1e-9):
        mid = (lo + hi) / 2
        if predict(scenario.with_knobs(rate_rps=mid)).p99_ms <= p99_ms:
            lo = mid
        else:
            hi = mid
    return lo


class Panel:
    """The controls of one configuration."""

    def __init__(self, title: str, *, model: str = "sync", workers: int = 4, cache: str = "off",
                 pool_size: int = 5, nosql_read_units: float = 1000.0) -> None:
        import ipywidgets as w

        style, layout = {"description_width": "130px"}, w.Layout(width="340px")
        self.title = w.HTML(f"<b>{title}</b>")
        self.model = w.Dropdown(options=["sync", "threads", "async", "threadpool", "async-blocking"], value=model,
                                description="server model", style=style, layout=layout)
        self.workers = w.BoundedIntText(value=workers, min=1, max=64, description="workers", style=style,
                                        layout=layout)
        self.threads = w.BoundedIntText(value=4, min=1, max=64, description="threads (gthread)", style=style,
                                        layout=layout)
        self.cache = w.Dropdown(options=["off", "local", "redis"], value=cache, description="cache", style=style,
                                layout=layout)
        self.pool_size = w.BoundedIntText(value=pool_size, min=1, max=200, description="DB pool size",
                                          style=style, layout=layout)
        self.nosql = w.BoundedFloatText(value=nosql_read_units, min=1, max=100_000, description="NoSQL reads/s",
                                        style=style, layout=layout)
        self.controls = (self.model, self.workers, self.threads, self.cache, self.pool_size, self.nosql)
        self.box = w.VBox([self.title, *self.controls])

    def scenario(self, base: Scenario, rate: float) -> Scenario:
        model = self.model.value
        return base.with_knobs(model=model, workers=self.workers.value,
                               threads=self.threads.value if model == "threads" else 1, cache=self.cache.value,
                               pool_size=self.pool_size.value, nosql_read_units=self.nosql.value, rate_rps=rate)


def base_scenario() -> Scenario:
    """The dashboard's service: the lab's endpoint mix on the reference hardware, PostgreSQL behind it."""
    import dataclasses

    from simulator.scenario import REFERENCE_ENDPOINTS as R

    mix = (dataclasses.replace(R["indicator"], weight=60), dataclasses.replace(R["indicator_list"], weight=20),
           dataclasses.replace(R["summary"], weight=5), dataclasses.replace(R["events_read"], weight=10),
           dataclasses.replace(R["events_write"], weight=5))
    sc = Scenario().with_knobs(database="postgresql", ttl_s=60.0)
    return dataclasses.replace(sc, workload=dataclasses.replace(sc.workload, endpoints=mix))


class WhatIfDashboard:
    """Two configurations, one rate, one p99 target; ``show()`` for the page."""

    def __init__(self, base: Scenario | None = None, *, redraw: bool = False) -> None:
        """``redraw``: show the figure by redrawing a plain plotly figure into an Output widget on each
        change, instead of a live FigureWidget (Voila 0.5 does not render anywidget's FigureWidget)."""
        import ipywidgets as w
        import plotly.graph_objects as go

        self.redraw = redraw
        self.output = w.Output()
        self.base = base or base_scenario()
        self.a = Panel("Configuration A", model="sync", workers=5)
        self.b = Panel("Configuration B", model="async", workers=2, cache="redis")
        style = {"description_width": "130px"}
        self.rate = w.FloatSlider(value=100.0, min=5.0, max=1000.0, step=5.0, description="traffic, req/s",
                                  style=style, layout=w.Layout(width="520px"), continuous_update=False)
        self.target = w.FloatSlider(value=200.0, min=10.0, max=2000.0, step=10.0, description="p99 target, ms",
                                    style=style, layout=w.Layout(width="520px"), continuous_update=False)
        self.table = w.HTML()
        self.simulate_button = w.Button(description="check with the simulation", icon="play")
        self.simulated = w.HTML()
        # a live FigureWidget, or in redraw mode a plain figure shown afresh in self.output
        self.figure = go.Figure() if redraw else go.FigureWidget()
        for name, colour in (("A", "#d62728"), ("B", "#1f77b4")):
            self.figure.add_scatter(name=f"{name}: predicted p99", mode="lines", line={"color": colour})
            self.figure.add_scatter(name=f"{name} at the chosen rate", mode="markers",
                                    marker={"color": colour, "size": 11}, showlegend=False)
        self.figure.update_layout(xaxis_title="traffic, req/s", yaxis_title="p99, ms (log)", yaxis_type="log",
                                  height=420, margin={"t": 40}, legend={"orientation": "h", "y": -0.2})
        for control in (*self.a.controls, *self.b.controls, self.rate, self.target):
            control.observe(self._changed, names="value")
        self.simulate_button.on_click(self._simulate)
        self.predictions: dict[str, object] = {}
        self.update()

    def _changed(self, _change=None) -> None:
        self.update()

    def scenarios(self) -> dict[str, Scenario]:
        return {"A": self.a.scenario(self.base, self.rate.value), "B": self.b.scenario(self.base, self.rate.value)}

    def update(self) -> None:
        rows = []
        target = self.target.value
        self.predictions = {}
        with self.figure.batch_update():
            self.figure.layout.shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": target,
                                          "y1": target, "line": {"color": "#888", "dash": "dot"}}]
            for i, (name, sc) in enumerate(self.scenarios().items()):
                problems = sc.problems()
                if problems:
                    rows.append(f"<tr><td>{name}</td><td colspan=6>does not fit: {'; '.join(problems)}</td></tr>")
                    self.figure.data[2 * i].x = self.figure.data[2 * i].y = ()
                    self.figure.data[2 * i + 1].x = self.figure.data[2 * i + 1].y = ()
                    continue
                p = predict(sc)
                self.predictions[name] = p
                best = max_rate_predicted(sc, target)
                rates = np.linspace(0.02, 0.99, 40) * p.capacity_rps
                p99 = [predict(sc.with_knobs(rate_rps=float(r))).p99_ms for r in rates]
                self.figure.data[2 * i].x, self.figure.data[2 * i].y = rates, p99
                self.figure.data[2 * i + 1].x = [sc.workload.rate_rps] if p.stable else []
                self.figure.data[2 * i + 1].y = [p.p99_ms] if p.stable else []

                def ms(v):
                    return f"{v:,.1f}" if math.isfinite(v) else "overloaded"

                rows.append(f"<tr><td>{name}</td><td>{ms(p.p50_ms)}</td><td>{ms(p.p95_ms)}</td><td>{ms(p.p99_ms)}</td>"
                            f"<td>{p.capacity_rps:,.0f}</td><td>{p.bottleneck}</td><td>{best:,.0f}</td>"
                            f"<td>{sc.memory_mb():,.0f}</td></tr>")
        if self.redraw:
            self.output.clear_output(wait=True)
            with self.output:
                self.figure.show()
        self.table.value = (
            "<table style='border-collapse:collapse' cellpadding=4><tr><th></th><th>p50 ms</th><th>p95 ms</th>"
            "<th>p99 ms</th><th>capacity req/s</th><th>bottleneck</th>"
            f"<th>max req/s with p99 &lt; {target:g} ms</th><th>memory MB</th></tr>" + "".join(rows) + "</table>")
        self.simulated.value = ""

    def _simulate(self, _button=None) -> None:
        lines = []
        for name, sc in self.scenarios().items():
            if sc.problems():
                continue
            s = simulate(short(sc, 20.0, 4.0), seed=0).summary
            lines.append(f"{name}: simulated p50 {s.p50_ms:,.1f} ms, p99 {s.p99_ms:,.1f} ms, "
                         f"{s.throughput_rps:,.0f} req/s, errors {s.error_rate:.1%}")
        self.simulated.value = "<br>".join(lines)

    def show(self):
        import ipywidgets as w

        return w.VBox([w.HBox([self.a.box, self.b.box]), self.rate, self.target, self.table,
                       self.output if self.redraw else self.figure,
                       w.HBox([self.simulate_button]), self.simulated])
