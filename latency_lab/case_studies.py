"""The five case studies: their claims, their scenarios, and what the model says of each claim.

``datasets/case_studies.csv`` holds every before/after figure the studies
give. ``datasets/scenarios/case_NNN_before.toml`` and ``..._after.toml``
hold each study as a pair: the before as the study describes it (its
hardware where given, else the reference hardware), the after changing only
what the study says it changed. ``verdicts()`` runs both and judges each
claim the model can speak to:

* **reproduced**: the model's after/before ratio moves the same way as the
  claim's and is within a factor of ``TOLERANCE`` of it, or goes further
  (the changes described are enough; the reason then says the real system
  stopped short of what the model allows);
* **plausible only with more hardware**: the after falls short on the
  stated hardware but reaches the claim with k times the API cores (and
  one worker process more per core, as a deployment would scale);
* **not explained by the changes described**: neither.

Figures the model has no part in (cost, retention, number of services) are
listed as outside the model, with the reason.
"""

from __future__ import annotations

import csv
import dataclasses
import math
from dataclasses import dataclass

from simulator.analytic import predict
from simulator.model import simulate
from simulator.scenario import Scenario

from . import modes

TOLERANCE = 2.0  # a claimed ratio is reproduced when the model's is within this factor of it
HARDWARE_STEPS = (2, 4, 8)  # multiples of the API cores tried for "plausible with more hardware"
INSTANCES = {"001": 10}  # the study's figures are for this many identical instances; the model runs one
EXTRA_SCENARIOS = {("002", "mean_latency_cache_only"): "case_002_cache_only"}  # an after other than _after
STUDIES = ("000", "001", "002", "003", "004")

VERDICTS = ("reproduced", "plausible only with more hardware", "not explained by the changes described",
            "outside the model")


@dataclass(frozen=True)
class Claim:
    study: str
    metric: str
    before: float
    after: float
    unit: str
    hardware: str
    source: str
    model_metric: str
    evidence: str

    @property
    def ratio(self) -> float:
        return self.after / self.before if self.before else math.inf


def claims(study: str | None = None) -> list[Claim]:
    """Every before/after figure of the case studies (or of one)."""
    with open(modes.datasets_dir() / "case_studies.csv", newline="") as f:
        rows = [Claim(**{**r, "before": float(r["before"]), "after": float(r["after"])}) for r in csv.DictReader(f)]
    if study is not None:
        if study not in STUDIES:
            raise ValueError(f"study must be one of {', '.join(STUDIES)}, got {study!r}")
        rows = [r for r in rows if r.study == study]
    return rows


def scenario(study: str, side: str) -> Scenario:
    """A study's scenario: side is "before", "after" or another preset suffix ("cache_only")."""
    from .runs import preset

    return preset(f"case_{study}_{side}")


def _quick(sc: Scenario) -> Scenario:
    d = modes.seconds(sc.workload.duration_s, min(sc.workload.duration_s, 8.0))
    return sc.with_knobs(duration_s=d, warmup_s=min(sc.workload.warmup_s, d / 4))


def figures(sc: Scenario, *, seed: int = 0, instances: int = 1) -> dict[str, float]:
    """What the model says of a scenario, in the units of the claims' ``model_metric``."""
    sim = simulate(_quick(sc), seed=seed, allow_overcommit=True).summary
    cap = predict(sc.with_knobs(rate_rps=1.0) if sc.workload.arrival != "closed" else sc).capacity_rps
    ok = sim.error_rate < 0.5 and sim.ok > 0
    return {
        "p50_ms": sim.p50_ms if ok else math.inf,
        "p95_ms": sim.p95_ms if ok else math.inf,
        "p99_ms": sim.p99_ms if ok else math.inf,
        "mean_ms": sim.mean_ms if ok else math.inf,
        "throughput_rps": sim.throughput_rps * instances,
        "capacity_rps": cap * instances,
        "error_pct": 100 * sim.error_rate,
        "db_cpu_pct": 100 * sim.utilisation.get("db_cpu", math.nan),
        "cache_hit_pct": 100 * (0.0 if math.isnan(sim.cache_hit_ratio) else sim.cache_hit_ratio),
        "queries": _queries(sc),
        "stale_max_s": sc.backends.ttl_s if sc.backends.cache != "off" else 0.0,
        "offered_rps": sc.workload.rate_rps * instances if sc.workload.arrival != "closed" else math.nan,
    }


def _queries(sc: Scenario) -> float:
    eps = sc.workload.endpoints
    total = sum(e.weight for e in eps)
    return sum(e.weight * e.queries_per_request for e in eps) / total


def scaled(sc: Scenario, k: int) -> Scenario:
    """``sc`` on k times the API cores, with its worker processes scaled the same way."""
    h = dataclasses.replace(sc.hardware, api_cores=sc.hardware.api_cores * k,
                            api_memory_mb=sc.hardware.api_memory_mb * k,
                            db_max_connections=sc.hardware.db_max_connections * k)
    return dataclasses.replace(sc, hardware=h, server=dataclasses.replace(sc.server, workers=sc.server.workers * k))


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    verdict: str
    model_before: float = math.nan
    model_after: float = math.nan
    reason: str = ""

    @property
    def model_ratio(self) -> float:
        if self.model_before and math.isfinite(self.model_before) and math.isfinite(self.model_after):
            return self.model_after / self.model_before
        return math.nan

    def row(self) -> dict[str, object]:
        c = self.claim
        return {"study": c.study, "metric": c.metric, "claimed": f"{c.before:g} -> {c.after:g} {c.unit}",
                "claimed ratio": round(c.ratio, 3) if math.isfinite(c.ratio) else None,
                "model": (f"{self.model_before:.4g} -> {self.model_after:.4g}" if not math.isnan(self.model_before)
                          else ""),
                "model ratio": round(self.model_ratio, 3) if math.isfinite(self.model_ratio) else None,
                "verdict": self.verdict, "why": self.reason}


def _agrees(claimed: float, model: float) -> bool:
    if not (math.isfinite(claimed) and math.isfinite(model)) or claimed <= 0 or model <= 0:
        return False
    same_way = (claimed - 1) * (model - 1) > 0 or (abs(claimed - 1) < 0.05 and abs(model - 1) < 0.05)
    return same_way and abs(math.log(model / claimed)) <= math.log(TOLERANCE)


def little_check(study: str, before: Scenario, rows: list[Claim]) -> str:
    """For a closed loop with stated users and throughput, Little's law fixes the mean response
    time: users / throughput - think time. Return why the claimed latencies break it, or ""."""
    w = before.workload
    if w.arrival != "closed":
        return ""
    t = next((r for r in rows if r.model_metric == "throughput_rps" and r.unit == "req/s"), None)
    lat = [r for r in rows if r.unit == "ms" and r.model_metric in ("p50_ms", "p95_ms", "p99_ms", "mean_ms")]
    if t is None or not lat:
        return ""
    implied = {side: (w.users / getattr(t, side) - w.think_time_s) * 1000 for side in ("before", "after")}
    broken = [r for r in lat if r.model_metric == "p99_ms" and r.after < implied["after"] / TOLERANCE]
    broken += [r for r in lat if r.model_metric == "p50_ms" and r.after < implied["after"] / 10]
    if not broken:
        return ""
    return (f"Little's law: {w.users:,} users thinking {w.think_time_s:g} s at {t.after:,.0f} req/s spend "
            f"{implied['after']:,.0f} ms per request on average (before: {implied['before']:,.0f} ms); "
            f"the claimed latencies cannot all hold")


def verdicts(study: str, *, seed: int = 0) -> list[Verdict]:
    """A verdict for each claim of ``study``."""
    rows = claims(study)
    before = scenario(study, "before")
    n = INSTANCES.get(study, 1)
    cache: dict[str, dict[str, float]] = {}

    def figs(side: str, k: int = 1) -> dict[str, float]:
        key = f"{side}x{k}"
        if key not in cache:
            sc = before if side == "before" else scenario(study, side)
            cache[key] = figures(scaled(sc, k) if k > 1 else sc, seed=seed, instances=n)
        return cache[key]

    broken = little_check(study, before, rows)
    out = []
    for c in rows:
        if not c.model_metric:
            out.append(Verdict(c, "outside the model", reason=_outside(c)))
            continue
        side = EXTRA_SCENARIOS.get((study, c.metric), f"case_{study}_after").removeprefix(f"case_{study}_")
        m0, m1 = figs("before")[c.model_metric], figs(side)[c.model_metric]
        if c.before == 0:  # nothing before (no cache yet): judge the after's level itself
            ok = math.isfinite(m1) and abs(m1 - c.after) <= c.after * (1 - 1 / TOLERANCE)
            out.append(Verdict(c, VERDICTS[0] if ok else VERDICTS[2], m0, m1,
                               f"the model's after is {m1:.3g} {c.unit}, the claim {c.after:g}"))
            continue
        if broken and c.unit == "ms":
            out.append(Verdict(c, VERDICTS[2], m0, m1, broken))
            continue
        model = _ratio(m0, m1)
        if _agrees(c.ratio, model):
            why = "the described changes give this change on this hardware"
            if c.unit == "req/s" and m1 < c.after / TOLERANCE:  # the ratio holds, the level does not
                why += (f"; but at {m1:,.0f} req/s, not {c.after:,.0f}: the study's hardware must be bigger "
                        f"than the one modelled ({c.hardware})")
            out.append(Verdict(c, VERDICTS[0], m0, m1, why))
            continue
        if _beyond(c.ratio, model):
            out.append(Verdict(c, VERDICTS[0], m0, m1,
                               f"the described changes give more than claimed (ratio {model:.3g}): the real system "
                               "stopped at a limit the study does not describe"))
            continue
        for k in HARDWARE_STEPS:
            mk = figs(side, k)[c.model_metric]
            if _agrees(c.ratio, _ratio(m0, mk)) or _beyond(c.ratio, _ratio(m0, mk)):
                out.append(Verdict(c, VERDICTS[1], m0, m1,
                                   f"with {k}x the API cores ({before.hardware.api_cores * k}) the model's after "
                                   f"is {mk:.4g}"))
                break
        else:
            out.append(Verdict(c, VERDICTS[2], m0, m1,
                               f"even with {HARDWARE_STEPS[-1]}x the API cores the model's ratio is "
                               f"{_ratio(m0, figs(side, HARDWARE_STEPS[-1])[c.model_metric]):.3g}, "
                               f"the claim's {c.ratio:.3g}"))
    return out


def _beyond(claimed: float, model: float) -> bool:
    """The model's change goes the claim's way and further (a bigger gain, or a bigger cut)."""
    if not (math.isfinite(claimed) and claimed > 0) or math.isnan(model):
        return False
    return model >= claimed * TOLERANCE if claimed > 1 else model <= claimed / TOLERANCE


def _ratio(a: float, b: float) -> float:
    if not (math.isfinite(a) and a > 0):
        return math.nan
    return b / a if math.isfinite(b) else math.inf


def _outside(c: Claim) -> str:
    reasons = {"USD": "cost depends on prices and instance counts the model does not have",
               "services": "the model has one API server; it does not model service boundaries",
               "hops": "internal hops are part of the recipe's waits, not a separate figure",
               "connections": "connection counts are inputs (pool sizes), not outcomes",
               "s": "a single heavy request's time depends on a query plan the study does not give"}
    if c.metric == "user_retention":
        return "a business outcome: no queue model predicts it"
    if c.unit == "relative":
        return "a relative figure with no workload attached; the model's ratios for the same change are in " \
               "the rows above"
    return reasons.get(c.unit, "not a figure the model produces")


def table(study: str, *, seed: int = 0) -> list[dict[str, object]]:
    """The verdicts as rows, for a notebook's table."""
    return [v.row() for v in verdicts(study, seed=seed)]
