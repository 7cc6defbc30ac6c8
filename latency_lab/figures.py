"""Plotly figures the notebooks share: latency curves, CDFs, simulated against measured, live runs."""

from __future__ import annotations

import numpy as np

from simulator.result import Result

from .curves import Curve

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")


def curves_figure(curves: list[Curve], *, metrics=("p50_ms", "p99_ms"), title: str = "", widget: bool = False):
    """Latency against offered load for several configurations (simulated, with the formula dashed)."""
    import plotly.graph_objects as go

    fig = go.FigureWidget() if widget else go.Figure()
    for i, c in enumerate(curves):
        colour = PALETTE[i % len(PALETTE)]
        for metric in metrics:
            fig.add_scatter(x=c.rates, y=getattr(c, metric), name=f"{c.label} {metric[:3]}",
                            mode="lines+markers", line={"color": colour, "dash": "solid" if metric == metrics[-1]
                                                         else "dot"})
        finite = np.isfinite(c.predicted[metrics[-1]])
        fig.add_scatter(x=c.rates[finite], y=c.predicted[metrics[-1]][finite], name=f"{c.label} {metrics[-1][:3]} formula",
                        mode="lines", line={"color": colour, "dash": "dash", "width": 1})
    fig.update_layout(title=title, xaxis_title="offered load, req/s", yaxis_title="latency, ms (log)",
                      yaxis_type="log", height=450)
    return fig


def add_cdf(fig, values, name: str, colour: str | None = None):
    """Add the CDF of ``values`` (ms) to ``fig``; return ``fig``."""
    values = np.sort(np.asarray(values, dtype=float))
    values = values[np.isfinite(values)]
    if values.size:
        step = max(1, values.size // 500)
        fig.add_scatter(x=values[::step], y=(np.arange(values.size) / values.size)[::step], name=name,
                        line={"color": colour or PALETTE[len(fig.data) % len(PALETTE)]})
    return fig


def cdf_figure(results: dict[str, Result], *, column: str = "latency_ms", title: str = ""):
    """The latency distribution of each run, as a CDF on a log axis."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, r in results.items():
        add_cdf(fig, r.rows[column], name)
    fig.update_layout(title=title, xaxis_type="log", xaxis_title="latency, ms", yaxis_title="share of requests",
                      height=400)
    return fig


def comparison_figure(comparison, *, widget: bool = False):
    """Simulated (dashed) against measured (solid) p50, p95 and p99 at each rate of a Comparison."""
    import plotly.graph_objects as go

    fig = go.FigureWidget() if widget else go.Figure()
    rates = [p.rate_rps for p in comparison.points]
    for metric, colour in (("p50_ms", PALETTE[0]), ("p95_ms", PALETTE[3]), ("p99_ms", PALETTE[1])):
        for side, dash in (("measured", "solid"), ("simulated", "dash")):
            fig.add_scatter(x=rates, y=[getattr(getattr(p, side).summary, metric) for p in comparison.points],
                            name=f"{side} {metric[:3]}", mode="lines+markers", line={"color": colour, "dash": dash})
    s = comparison.scenario.server
    fig.update_layout(title=f"{s.model} x {s.workers}: measured (solid) and simulated (dashed)",
                      xaxis_title="offered load, req/s", yaxis_title="latency, ms (log)", yaxis_type="log", height=450)
    return fig


class LiveChart:
    """A chart of p50 and p99 per second that grows while a load runs: pass ``chart.watch`` to measure()."""

    def __init__(self, title: str = "live: latency per second of the run") -> None:
        import plotly.graph_objects as go

        self.figure = go.FigureWidget()
        self.figure.add_scatter(name="p50", mode="lines+markers", line={"color": PALETTE[0]})
        self.figure.add_scatter(name="p99", mode="lines+markers", line={"color": PALETTE[1]})
        self.figure.add_bar(name="requests done", yaxis="y2", marker={"color": "#ccc"}, opacity=0.4)
        self.figure.update_layout(title=title, xaxis_title="second of the run (by scheduled time)",
                                  yaxis={"title": "latency, ms", "type": "log"},
                                  yaxis2={"title": "requests", "overlaying": "y", "side": "right"}, height=380)
        self.by_second: dict[int, list[float]] = {}

    def watch(self, rows: list[tuple]) -> None:
        # rows in simulator.result.COLUMNS order: scheduled_s first, latency_ms second to last
        for row in rows:
            self.by_second.setdefault(int(row[0]), []).append(row[-2])
        seconds = sorted(self.by_second)
        p50 = [float(np.percentile(self.by_second[s], 50)) for s in seconds]
        p99 = [float(np.percentile(self.by_second[s], 99)) for s in seconds]
        with self.figure.batch_update():
            self.figure.data[0].x, self.figure.data[0].y = seconds, p50
            self.figure.data[1].x, self.figure.data[1].y = seconds, p99
            self.figure.data[2].x, self.figure.data[2].y = seconds, [len(self.by_second[s]) for s in seconds]


def per_second_figure(series: dict[str, tuple[np.ndarray, np.ndarray]], *, capacity: float | None = None,
                      title: str = ""):
    """Successful responses per second over a run, one line per configuration (``curves.answered_per_second``)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for i, (name, (t, per_s)) in enumerate(series.items()):
        fig.add_scatter(x=t, y=per_s, name=name, mode="lines", line={"color": PALETTE[i % len(PALETTE)],
                                                                     "shape": "hv"})
    if capacity is not None:
        fig.add_hline(y=capacity, line={"dash": "dash", "color": "grey"}, annotation_text="capacity")
    fig.update_layout(title=title, xaxis_title="time, s", yaxis_title="answered per second", height=400)
    return fig
