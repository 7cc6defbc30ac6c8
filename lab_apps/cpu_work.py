"""Real, deterministic CPU work: ``burn(ms)`` runs Python bytecode for about ``ms``
milliseconds of CPU time, as a handler's parsing and business logic would.

Calibrated once per process against the thread's own CPU clock
(``time.thread_time``), so a busy machine during calibration does not make
the work shorter; the loop holds the GIL, as real Python code does.
"""

from __future__ import annotations

import time

_CHUNK = 20_000
_per_ms: float | None = None


def _spin(n: int) -> int:
    x = 1
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def calibrate() -> float:
    """Loop iterations per millisecond of CPU; the best of five trials."""
    global _per_ms
    best = 0.0
    for _ in range(5):
        t0 = time.thread_time()
        _spin(_CHUNK)
        elapsed = time.thread_time() - t0
        if elapsed > 0:
            best = max(best, _CHUNK / (elapsed * 1000))
    _per_ms = best or 10_000.0
    return _per_ms


def iterations_per_ms() -> float:
    return _per_ms if _per_ms is not None else calibrate()


def burn(ms: float) -> None:
    if ms > 0:
        _spin(int(ms * iterations_per_ms()))
