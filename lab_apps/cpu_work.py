"""Real CPU work: ``burn(ms)`` runs Python bytecode until this thread has used ``ms``
milliseconds of CPU, as a handler's parsing and business logic would.

It spins in short chunks and reads the thread's own CPU clock
(``time.thread_time``) between them, so the work is the same CPU time
whatever the clock speed (seen to drift by 40% here between runs) and
however long the thread waits for the GIL or a core meanwhile: that is what
the model calls a CPU demand. The loop holds the GIL, as real Python does.

The same loop is a speedometer: the iterations it got through per millisecond
of CPU is how fast this core runs Python right now. On a shared virtual
machine that moves within seconds: this loop's speed by 1.65x in one minute
here, a json-heavy loop's by 2x (benchmarks/host_speed.py),
while the burn's CPU time stays fixed; the app's own code (the framework,
the driver) does a fixed amount of work and so takes longer when the core is
slow. Each response reports its burn's speed (``X-Lab-Speed``), so a measured
run records how fast the host was while it ran.
"""

from __future__ import annotations

import time

_CHUNK_MS = 0.05  # read the clock about every 50 microseconds of spinning
_per_ms: float | None = None


def _spin(n: int) -> int:
    x = 1
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    return x


def calibrate() -> float:
    """Loop iterations per millisecond of CPU (median of five 2 ms trials): sizes the chunks."""
    global _per_ms
    _spin(20_000)  # warm up
    trials = []
    for _ in range(5):
        t0 = time.thread_time()
        _spin(20_000)
        elapsed = time.thread_time() - t0
        if elapsed > 0:
            trials.append(20_000 / (elapsed * 1000))
    _per_ms = sorted(trials)[len(trials) // 2] if trials else 10_000.0
    return _per_ms


def iterations_per_ms() -> float:
    return _per_ms if _per_ms is not None else calibrate()


def burn(ms: float) -> tuple[int, float]:
    """Spin for ``ms`` of this thread's CPU; returns (loop iterations, CPU seconds they took)."""
    if ms <= 0:
        return 0, 0.0
    chunk = max(10, int(iterations_per_ms() * _CHUNK_MS))  # the first call calibrates: before the clock starts
    clock = time.thread_time
    start = clock()
    end = start + ms / 1000
    done = 0
    now = start
    while now < end:
        _spin(chunk)
        done += chunk
        now = clock()
    return done, now - start
