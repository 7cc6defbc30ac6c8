"""CPU cores shared by processes.

``TimeSliced``: the API server's cores, as Linux shares them among a few worker
processes. The scheduler preempts a running process only at its tick, so a
Python burst of a few milliseconds runs to its end while the others wait:
first come, first served, in slices of a tick.

``ProcessorSharing``: the classic model for many runnable jobs in short slices
(the DB server's backends): with ``n`` runnable jobs on ``c`` cores each one
progresses at rate ``min(1, c / n)``.

Processor sharing, implemented: a virtual clock ``v`` counts the service every
running job has received so far. A job that arrives at virtual time ``v0`` with
``w`` seconds of work finishes when ``v`` reaches ``v0 + w``, so the jobs sit in
a heap by finishing virtual time and only the earliest needs a scheduled event.
An arrival or a departure changes the rate, and so reschedules that one event;
stale events are recognised by a token and ignored, which is cheaper than
SimPy interrupts.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush

import simpy

__all__ = ["ProcessorSharing", "TimeSliced"]


class ProcessorSharing:
    """``servers`` identical cores shared equally by every job running on them."""

    def __init__(self, env: simpy.Environment, servers: int) -> None:
        if servers < 1:
            raise ValueError(f"servers must be >= 1, got {servers}")
        self.env = env
        self.servers = servers
        self._v = 0.0  # service received by each running job so far (virtual time)
        self._t = env.now  # real time at which _v was last brought up to date
        self._heap: list[tuple[float, int, simpy.Event]] = []
        self._seq = 0
        self._token = 0
        self.busy_area = 0.0  # integral of busy cores over time
        self.jobs_area = 0.0  # integral of running jobs over time

    @property
    def jobs(self) -> int:
        """Jobs running now (each on a share of the cores)."""
        return len(self._heap)

    def run(self, work_s: float) -> simpy.Event:
        """An event that fires once ``work_s`` seconds of CPU have been served."""
        self._advance()
        done = self.env.event()
        if work_s <= 0:
            done.succeed()
            return done
        n_before = len(self._heap)
        heappush(self._heap, (self._v + work_s, self._seq, done))
        self._seq += 1
        # With spare cores before and after, every rate stays 1: the scheduled
        # completion is still right unless the new job is the first to finish.
        if 0 < n_before < self.servers and self._heap[0][2] is not done:
            return done
        self._schedule()
        return done

    def _advance(self) -> None:
        now = self.env.now
        dt = now - self._t
        if dt > 0:
            n = len(self._heap)
            if n:
                c = self.servers
                if n <= c:
                    self._v += dt
                    self.busy_area += dt * n
                else:
                    self._v += dt * c / n
                    self.busy_area += dt * c
                self.jobs_area += dt * n
            self._t = now

    def _schedule(self) -> None:
        self._token += 1
        heap = self._heap
        if not heap:
            return
        n = len(heap)
        rate = 1.0 if n <= self.servers else self.servers / n
        delay = (heap[0][0] - self._v) / rate
        token = self._token
        ev = self.env.timeout(delay if delay > 0 else 0.0)
        ev.callbacks.append(lambda _ev: self._complete(token))

    def _complete(self, token: int) -> None:
        if token != self._token:
            return  # a later arrival or departure rescheduled this completion
        self._advance()
        heap = self._heap
        limit = self._v + 1e-12 * (1.0 + self._v)  # float round-off in the virtual clock
        finished = []
        while heap and heap[0][0] <= limit:
            finished.append(heappop(heap)[2])
        self._schedule()
        for done in finished:
            _fire(done)


def _fire(event: simpy.Event) -> None:
    """Trigger ``event`` and run its callbacks now, inside the current step.

    ``succeed()`` would schedule it and cost a second trip through SimPy's
    event queue at the same instant; the waiting process resumes in the same
    order either way, since each job's completion has its own instant.
    """
    event._ok = True
    event._value = None
    callbacks, event.callbacks = event.callbacks, None
    for callback in callbacks:
        callback(event)


class TimeSliced:
    """``servers`` cores shared in time slices, first come, first served.

    A job runs on a free core for up to ``slice_s``; with work left it goes to the
    back of the queue. Linux's EEVDF scheduler gives each runnable process a base
    slice of 0.75 ms x (1 + log2 CPUs), but without high-resolution ticks it
    preempts only at the scheduler tick (4 ms at CONFIG_HZ=250): a Python burst of
    a few milliseconds runs to its end while others wait, which is first come,
    first served, not processor sharing. For bursts much longer than a slice the
    two agree.
    """

    def __init__(self, env: simpy.Environment, servers: int, slice_s: float, wake_s: float = 0.0,
                 cold_s: tuple[float, float] = (0.0, 0.0)) -> None:
        if servers < 1:
            raise ValueError(f"servers must be >= 1, got {servers}")
        if not slice_s > 0:
            raise ValueError(f"slice_s must be > 0, got {slice_s}")
        if not wake_s >= 0:
            raise ValueError(f"wake_s must be >= 0, got {wake_s}")
        if not 0 <= cold_s[0] <= cold_s[1]:
            raise ValueError(f"cold_s must be (from, full) with 0 <= from <= full, got {cold_s}")
        self.env = env
        self.servers = servers
        self.slice_s = slice_s
        # A job that finds a core idle first pays for waking it: wake_s once the core has idled
        # cold_s[1] or longer, nothing under cold_s[0], a linear share between (a job that
        # follows another at the same instant finds it warm). When each idle core went idle:
        self.wake_s = wake_s
        self.cold_from_s, self.cold_full_s = cold_s
        self._idle_since = [env.now] * servers
        self.wakes = 0.0  # full wakes paid: a share for each that found a core only partly cold
        self._queue: deque[tuple[float, simpy.Event]] = deque()
        self._running = 0
        self._jobs = 0
        self._t = env.now
        self.busy_area = 0.0
        self.jobs_area = 0.0

    @property
    def jobs(self) -> int:
        """Jobs running or waiting for a core."""
        return self._jobs

    def run(self, work_s: float) -> simpy.Event:
        """An event that fires once ``work_s`` seconds of CPU have been served."""
        done = self.env.event()
        if work_s <= 0:
            done.succeed()
            return done
        self._advance()
        self._jobs += 1
        if self._running < self.servers:
            cold = self._coldness(self.env.now - self._idle_since.pop())
            if cold:
                self.wakes += cold
                work_s += self.wake_s * cold
            self._start(work_s, done)
        else:
            self._queue.append((work_s, done))
        return done

    def _coldness(self, idle_s: float) -> float:
        """The share of a full wake that a core idle for ``idle_s`` costs."""
        if idle_s <= 0 or idle_s < self.cold_from_s:
            return 0.0
        if idle_s >= self.cold_full_s:
            return 1.0
        return (idle_s - self.cold_from_s) / (self.cold_full_s - self.cold_from_s)

    def _advance(self) -> None:
        now = self.env.now
        dt = now - self._t
        if dt > 0:
            self.busy_area += dt * self._running
            self.jobs_area += dt * self._jobs
            self._t = now

    def _start(self, work_s: float, done: simpy.Event) -> None:
        self._running += 1
        ran = work_s if work_s <= self.slice_s else self.slice_s
        self.env.timeout(ran).callbacks.append(lambda _ev: self._end_slice(work_s - ran, done))

    def _end_slice(self, left_s: float, done: simpy.Event) -> None:
        self._advance()
        self._running -= 1
        finished = left_s <= 1e-12
        if not finished:
            self._queue.append((left_s, done))
        if self._queue:  # the next job takes the core before anyone woken below can
            self._start(*self._queue.popleft())
        else:
            self._idle_since.append(self.env.now)
        if finished:
            self._jobs -= 1
            _fire(done)
