"""Phase-time distributions.

Each distribution validates on construction (a bad parameter raises at once,
naming it), prints as it would be written (``Exponential(mean=2.0)``) and
compares by value. Units are the caller's: a field called ``io_ms`` holds a
distribution in milliseconds.

Sampling takes a ``numpy.random.Generator`` and draws in blocks, so the model
pays numpy's price once per few thousand requests rather than once per draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Distribution", "Fixed", "Exponential", "LogNormal", "Empirical", "as_distribution"]


class Distribution:
    """Base class: ``mean``, ``variance`` and ``sample(rng, n)``."""

    kind: str = ""

    @property
    def mean(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def variance(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def scaled(self, factor: float) -> Distribution:  # pragma: no cover - abstract
        """The same shape with every value multiplied by ``factor``."""
        raise NotImplementedError

    def to_toml(self) -> float | dict:  # pragma: no cover - abstract
        raise NotImplementedError


def _check_number(name: str, value: float, *, low: float, strict: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < low or (strict and value == low):
        bound = f"> {low:g}" if strict else f">= {low:g}"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Fixed(Distribution):
    """Always ``value``: the lab apps' injected waits and CPU work are fixed."""

    value: float
    kind = "fixed"

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", _check_number("Fixed.value", self.value, low=0, strict=False))

    @property
    def mean(self) -> float:
        return self.value

    @property
    def variance(self) -> float:
        return 0.0

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value)

    def scaled(self, factor: float) -> Fixed:
        return Fixed(self.value * factor)

    def to_toml(self) -> float:
        return self.value


@dataclass(frozen=True, slots=True)
class Exponential(Distribution):
    """Memoryless, with the given ``mean``: the textbook service time (M/M/c)."""

    mean_value: float
    kind = "exponential"

    def __init__(self, mean: float) -> None:
        object.__setattr__(self, "mean_value", _check_number("Exponential.mean", mean, low=0, strict=True))

    def __repr__(self) -> str:
        return f"Exponential(mean={self.mean_value!r})"

    @property
    def mean(self) -> float:
        return self.mean_value

    @property
    def variance(self) -> float:
        return self.mean_value**2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean_value, n)

    def scaled(self, factor: float) -> Exponential:
        return Exponential(self.mean_value * factor)

    def to_toml(self) -> dict:
        return {"dist": "exponential", "mean": self.mean_value}


@dataclass(frozen=True, slots=True)
class LogNormal(Distribution):
    """Right-skewed, given by its ``mean`` and coefficient of variation ``cv``.

    Database and network times usually look like this: most calls near the
    median, a long tail. ``cv`` = standard deviation / mean.
    """

    mean_value: float
    cv: float
    kind = "lognormal"

    def __init__(self, mean: float, cv: float) -> None:
        object.__setattr__(self, "mean_value", _check_number("LogNormal.mean", mean, low=0, strict=True))
        object.__setattr__(self, "cv", _check_number("LogNormal.cv", cv, low=0, strict=True))

    def __repr__(self) -> str:
        return f"LogNormal(mean={self.mean_value!r}, cv={self.cv!r})"

    @property
    def mean(self) -> float:
        return self.mean_value

    @property
    def variance(self) -> float:
        return (self.cv * self.mean_value) ** 2

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        sigma2 = math.log1p(self.cv**2)
        mu = math.log(self.mean_value) - sigma2 / 2
        return rng.lognormal(mu, math.sqrt(sigma2), n)

    def scaled(self, factor: float) -> LogNormal:
        return LogNormal(self.mean_value * factor, self.cv)

    def to_toml(self) -> dict:
        return {"dist": "lognormal", "mean": self.mean_value, "cv": self.cv}


@dataclass(frozen=True, slots=True, eq=False)
class Empirical(Distribution):
    """Resamples observed values, for example phase times from a measured run."""

    values: tuple[float, ...]
    kind = "empirical"

    def __init__(self, values) -> None:
        arr = np.asarray(list(values), dtype=float)
        if arr.size == 0:
            raise ValueError("Empirical.values must hold at least one observation")
        if not np.all(np.isfinite(arr)) or np.any(arr < 0):
            raise ValueError("Empirical.values must be finite and >= 0")
        object.__setattr__(self, "values", tuple(arr.tolist()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Empirical) and self.values == other.values

    def __hash__(self) -> int:
        return hash(self.values)

    def __repr__(self) -> str:
        return f"Empirical(n={len(self.values)}, mean={self.mean:.4g})"

    @property
    def mean(self) -> float:
        return float(np.mean(self.values))

    @property
    def variance(self) -> float:
        return float(np.var(self.values))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(np.asarray(self.values), n)

    def scaled(self, factor: float) -> Empirical:
        return Empirical([v * factor for v in self.values])

    def to_toml(self) -> dict:
        return {"dist": "empirical", "values": list(self.values)}


_KINDS = {"fixed": Fixed, "exponential": Exponential, "lognormal": LogNormal, "empirical": Empirical}


def as_distribution(value, name: str = "value") -> Distribution:
    """Turn a number (fixed) or a TOML table ``{dist = "...", ...}`` into a Distribution."""
    if isinstance(value, Distribution):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return Fixed(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    if isinstance(value, dict):
        params = dict(value)
        kind = params.pop("dist", None)
        if kind not in _KINDS:
            raise ValueError(f"{name}: dist must be one of {sorted(_KINDS)}, got {kind!r}")
        try:
            return _KINDS[kind](**params)
        except TypeError as exc:
            raise ValueError(f"{name}: bad parameters for {kind}: {exc}") from None
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    raise ValueError(f"{name} must be a number of ms or a table with 'dist', got {value!r}")


class Draws:
    """A stream of draws from one distribution, refilled in blocks."""

    __slots__ = ("_dist", "_rng", "_block", "_buf", "_i")

    def __init__(self, dist: Distribution, rng: np.random.Generator, block: int = 4096) -> None:
        self._dist, self._rng, self._block = dist, rng, block
        self._buf: list[float] = []
        self._i = 0

    def __call__(self) -> float:
        i = self._i
        if i >= len(self._buf):
            self._buf = self._dist.sample(self._rng, self._block).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]
