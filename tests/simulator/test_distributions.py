"""Every distribution's samples against its own mean and variance."""

import numpy as np
import pytest

from simulator import Empirical, Exponential, Fixed, LogNormal
from simulator.distributions import Draws, as_distribution


@pytest.mark.parametrize("dist", [Fixed(3.0), Exponential(2.5), LogNormal(5.0, 0.8), Empirical([1.0, 2.0, 7.0])])
def test_sample_mean_and_variance_match_the_distribution(dist):
    x = dist.sample(np.random.default_rng(11), 200_000)
    assert x.mean() == pytest.approx(dist.mean, rel=0.01)
    assert x.var() == pytest.approx(dist.variance, rel=0.05, abs=1e-12)
    assert (x >= 0).all()


def test_block_draws_replay_the_same_stream():
    a = Draws(Exponential(1.0), np.random.default_rng(3), block=7)
    b = Exponential(1.0).sample(np.random.default_rng(3), 7)
    assert [a() for _ in range(7)] == b.tolist()


def test_numbers_and_tables_become_distributions():
    assert as_distribution(4) == Fixed(4.0)
    assert as_distribution({"dist": "lognormal", "mean": 5, "cv": 1}) == LogNormal(5.0, 1.0)
    with pytest.raises(ValueError, match="needs|bad parameters"):
        as_distribution({"dist": "exponential", "rate": 2})
    with pytest.raises(ValueError, match="at least one"):
        Empirical([])
    with pytest.raises(ValueError, match="LogNormal.cv"):
        LogNormal(5.0, -1)


def test_scaled_keeps_the_shape():
    assert LogNormal(5.0, 0.5).scaled(2) == LogNormal(10.0, 0.5)
    assert Empirical([1, 2]).scaled(3) == Empirical([3, 6])
