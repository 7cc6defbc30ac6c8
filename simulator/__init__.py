"""Latency Lab's model: sync workers versus async event loops, in SimPy.

Every public name is listed once, in ``_PUBLIC``; it builds ``__all__``, so
what the package exports and what its docs list cannot drift apart.
"""

from .analytic import Prediction, erlang_c, mm1_ps_response_s, mmc_mean_wait_s, mva, predict
from .backends import TokenBucket, TtlCache, ttl_hit_ratio, zipf_probabilities
from .distributions import Distribution, Empirical, Exponential, Fixed, LogNormal
from .model import simulate
from .replicate import REPLICATIONS, replicate
from .result import ERROR_CODES, Result, Summary, machine_info
from .scenario import (
    KNOBS,
    REFERENCE_ENDPOINTS,
    SERVER_MODELS,
    Backends,
    Endpoint,
    Hardware,
    Scenario,
    ScenarioDoesNotFit,
    Server,
    Workload,
)
from .sweep import parse_sweep, sweep

_PUBLIC = [
    # describing a what-if
    Scenario, Hardware, Server, Workload, Endpoint, Backends, ScenarioDoesNotFit,
    KNOBS, REFERENCE_ENDPOINTS, SERVER_MODELS,
    # phase-time distributions
    Distribution, Fixed, Exponential, LogNormal, Empirical,
    # running it
    simulate, replicate, REPLICATIONS, sweep, parse_sweep, Result, Summary, ERROR_CODES, machine_info,
    # the analytic companion
    predict, Prediction, erlang_c, mmc_mean_wait_s, mm1_ps_response_s, mva, ttl_hit_ratio,
    # building blocks, for tests and notebooks
    TtlCache, TokenBucket, zipf_probabilities,
]
_NAMES = {"KNOBS": KNOBS, "REFERENCE_ENDPOINTS": REFERENCE_ENDPOINTS, "SERVER_MODELS": SERVER_MODELS,
          "REPLICATIONS": REPLICATIONS,
          "ERROR_CODES": ERROR_CODES}
__all__ = [next((k for k, v in _NAMES.items() if v is obj), getattr(obj, "__name__", None)) for obj in _PUBLIC]
