"""How the notebooks run: full or smoke length, live servers or recorded runs.

* ``LAB_SMOKE=1`` (set by ``make test``): every simulated and measured run is
  shortened, so all notebooks execute headless in minutes. The figures are
  noisier; the story is the same.
* ``LAB_MODE=live`` starts the real apps and measures them; ``LAB_MODE=replay``
  reads the runs recorded on the reference machine from ``datasets/runs``.
  The default is live, except on Binder, whose small shared pod would measure
  its neighbours more than the apps.
"""

from __future__ import annotations

import os
from pathlib import Path

MODES = ("live", "replay")
_TRUE = ("1", "true", "yes", "on")


def smoke() -> bool:
    """True when runs should be short (``LAB_SMOKE=1``)."""
    return os.environ.get("LAB_SMOKE", "").strip().lower() in _TRUE


def seconds(full_s: float, smoke_s: float) -> float:
    """A run length: ``full_s`` normally, ``smoke_s`` in smoke mode."""
    return float(smoke_s if smoke() else full_s)


def on_binder() -> bool:
    # repo2docker sets these in every Binder session
    return any(k in os.environ for k in ("BINDER_LAUNCH_HOST", "BINDER_REQUEST", "BINDER_REPO_URL"))


def mode() -> str:
    """``"live"`` or ``"replay"``, from ``LAB_MODE``; replay by default on Binder."""
    value = os.environ.get("LAB_MODE", "").strip().lower()
    if not value:
        return "replay" if on_binder() else "live"
    if value not in MODES:
        raise ValueError(f"LAB_MODE must be live or replay, got {value!r}")
    return value


def describe() -> str:
    """One line a notebook prints so the reader knows what its figures are."""
    m = mode()
    what = ("LIVE: the lab apps run on this machine and are measured now"
            if m == "live" else
            "REPLAY: measured figures come from runs recorded on the reference machine (datasets/runs); "
            "the model still runs live. Set LAB_MODE=live to measure here")
    return f"Mode {what}." + (" Smoke mode: runs are shortened (LAB_SMOKE=1)." if smoke() else "")


def datasets_dir() -> Path:
    """The repository's ``datasets/`` (``LAB_DATASETS`` overrides)."""
    override = os.environ.get("LAB_DATASETS")
    path = Path(override) if override else Path(__file__).resolve().parents[1] / "datasets"
    if not path.is_dir():
        raise FileNotFoundError(f"datasets directory not found at {path}: run from a clone of the "
                                "repository (pip install -e .) or set LAB_DATASETS")
    return path
