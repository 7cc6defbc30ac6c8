import numpy as np
import pytest

from simulator import Endpoint, Exponential, Fixed, Hardware, Scenario, Server, Workload


def pure(name="pure", *, cpu=None, io=None, queries=1, **kw) -> Endpoint:
    """An endpoint with nothing but the phases given (no DB CPU)."""
    return Endpoint(name=name, cpu_ms=cpu if cpu is not None else Fixed(0.0),
                    io_ms=io if io is not None else Fixed(0.0), db_cpu_ms=Fixed(0.0),
                    queries_per_request=queries, **kw)


def bare(model="sync", workers=4, *, cores=2, rate=100.0, duration=60.0, warmup=5.0,
         endpoint=None, **server) -> Scenario:
    """A scenario with no framework CPU and no network time: only what the test sets."""
    return Scenario(
        hardware=Hardware(api_cores=cores, network_rtt_ms=0.0),
        server=Server(model=model, workers=workers, framework_cpu_ms=0.0, **server),
        workload=Workload(rate_rps=rate, duration_s=duration, warmup_s=warmup,
                          endpoints=(endpoint or pure(io=Exponential(10.0)),)),
    )


@pytest.fixture
def seeds():
    return range(8)


def mean_over(results, fn):
    return float(np.mean([fn(r) for r in results]))
