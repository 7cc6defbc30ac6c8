"""CPU cores shared by processes.

``FairShare``: the API server's cores, as Linux shares them among a few worker
processes: the runnable process that has had least CPU runs, and a process
remembers across its sleeps what it has had. Identical workers so served keep
the same point of their cycle, burn together and wait together, and the core
idles while all of them wait.

``TimeSliced``: the same cores as a host shares them when bursts take turns, first
come, first served, in short slices, a waking process waiting its turn: the workers'
bursts stay out of step and the core idles only when every worker waits. Which of the
two a host does is measured (``lab_apps.measure.calibrate``).

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

import math
from collections import deque
from heapq import heappop, heappush

import simpy

__all__ = ["FairShare", "ProcessorSharing", "TimeSliced"]


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


class _SharedCores:
    """What both ways of sharing the API cores keep: ``servers`` cores sliced at ``slice_s``, the
    cost of waking an idle one (``wake_s`` once it has idled ``cold_s[1]`` or longer, nothing under
    ``cold_s[0]``, a linear share between), and the counters the model reads."""

    def __init__(self, env: simpy.Environment, servers: int, slice_s: float, wake_s: float,
                 cold_s: tuple[float, float]) -> None:
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
        self.wake_s = wake_s
        self.cold_from_s, self.cold_full_s = cold_s
        self._idle_since = [env.now] * servers  # when each idle core went idle
        self.wakes = 0.0  # full wakes paid: a share for each that found a core only partly cold
        self.preemptions = 0  # a running job sent back to wait with work left
        self._busy = 0  # cores running a job
        self._jobs = 0
        self._t = env.now
        self.busy_area = 0.0  # integral of busy cores over time
        self.jobs_area = 0.0  # integral of jobs running or waiting over time

    @property
    def jobs(self) -> int:
        """Jobs running or waiting for a core."""
        return self._jobs

    def _advance(self) -> None:
        now = self.env.now
        dt = now - self._t
        if dt > 0:
            self.busy_area += dt * self._busy
            self.jobs_area += dt * self._jobs
            self._t = now

    def _cold_share(self, idle_s: float) -> float:
        """The share of a full wake a core idle for ``idle_s`` costs."""
        if idle_s <= 0 or idle_s < self.cold_from_s:
            return 0.0
        if idle_s >= self.cold_full_s:
            return 1.0
        return (idle_s - self.cold_from_s) / (self.cold_full_s - self.cold_from_s)


class FairShare(_SharedCores):
    """``servers`` cores shared among processes as Linux's fair scheduler shares them: by the CPU
    each process has received, which it remembers across the process's sleeps.

    Each process (``owner``) has a virtual runtime, the CPU it has had. The cores run the
    runnable processes that have had least. A process that wakes (a job arrives) takes a core
    from a running one that has had more; at each scheduler tick a process that has run its
    slice gives the core to a waiting one that has had less. A process that slept keeps its
    virtual runtime, but no more than ``lag_s`` below the least of the others': Linux's EEVDF
    keeps a sleeper's lag, clamped to max(2 x slice, tick) (kernel/sched/fair.c,
    update_entity_lag), as CFS placed a sleeper at most half a latency period back.

    That memory is what a first-come-first-served model misses. Worker processes that run the
    same request cycle and are served so that their CPU received stays equal stay at the same
    point of their cycle: they burn together and reach their waits together, and the core
    idles while all of them wait (``benchmarks/cpu_sharing.py``: four processes on one core,
    all four runnable 43% of the time and none 15%, on the host and in this model alike).

    Short jobs of processes that have never run (``owner`` None: a process of its own for each
    job) queue first come, first served, M/D/1 for bursts under a slice; with a slice and tick
    far shorter than the bursts the same jobs share the core, M/G/1 processor sharing.

    A job that finds a core idle first pays for waking it: ``wake_s`` once the core has idled
    ``cold_s[1]`` or longer, nothing under ``cold_s[0]``, a linear share between (a job that
    follows another at the same instant finds it warm).
    """

    def __init__(self, env: simpy.Environment, servers: int, slice_s: float, tick_s: float | None, lag_s: float,
                 wake_s: float = 0.0, cold_s: tuple[float, float] = (0.0, 0.0)) -> None:
        if tick_s is not None and not tick_s > 0:
            raise ValueError(f"tick_s must be > 0 (None: a slice ends when it runs out), got {tick_s}")
        if not lag_s >= 0:
            raise ValueError(f"lag_s must be >= 0, got {lag_s}")
        super().__init__(env, servers, slice_s, wake_s, cold_s)
        self.tick_s, self.lag_s = tick_s, lag_s
        self._vr: dict = {}  # owner -> CPU received (its virtual runtime), up to its running job's start
        self._floor = 0.0  # the least virtual runtime among runnable processes, never decreasing
        self._heap: list[tuple[float, int, object, float, simpy.Event]] = []  # (vr, seq, owner, work, done)
        self._seq = 0
        # per core: None when idle, else [owner, work left at `since`, since, picked at, done, token]
        self._cores: list[list | None] = [None] * servers
        self._token = 0

    def run(self, work_s: float, owner: object = None) -> simpy.Event:
        """An event that fires once ``work_s`` seconds of CPU have been served to ``owner``."""
        done = self.env.event()
        if work_s <= 0:
            done.succeed()
            return done
        now = self.env.now
        dt = now - self._t
        if dt > 0:  # self._advance(), inline: this is the model's hottest path
            self.busy_area += dt * self._busy
            self.jobs_area += dt * self._jobs
            self._t = now
        self._jobs += 1
        if owner is None:  # a process of its own, forgotten when its job is done
            owner = _Anonymous()
        least = self._least()
        vr = self._vr.get(owner)
        # a process seen for the first time starts behind every runnable one (CFS's START_DEBIT):
        # it takes no core from them
        if vr is None:
            vr = self._most(least)
        elif vr < least - self.lag_s:
            vr = least - self.lag_s
        self._vr[owner] = vr
        cores = self._cores
        if self._busy < self.servers:
            i = cores.index(None)
            # the share of a full wake this idle costs, counted at no cost too: calibration needs it
            cold = self._cold_share(now - self._idle_since[i])
            if cold:
                self.wakes += cold
                work_s += self.wake_s * cold
            self._start(i, owner, work_s, done)
            return done
        # every core busy: take one from the process that has had most, if more than this one
        i = max(range(self.servers), key=self._running_vr)
        if self._running_vr(i) > vr:
            self._send_back(i)
            self._start(i, owner, work_s, done)
            if len(self._heap) == 1:
                self._face_ticks()
            return done
        heappush(self._heap, (vr, self._seq, owner, work_s, done))
        self._seq += 1
        if len(self._heap) == 1:
            self._face_ticks()
        return done

    def _face_ticks(self) -> None:
        """Someone waits now: each running job that outlasts its next tick must face it."""
        now = self.env.now
        for i, core in enumerate(self._cores):
            if core is not None and core[2] + core[1] > self._next_tick(core[3], now):
                self._settle(i)
                self._schedule(i)

    def _running_vr(self, i: int) -> float:
        core = self._cores[i]
        return self._vr[core[0]] + (self.env.now - core[2])

    def _least(self) -> float:
        """The least virtual runtime among runnable processes (CFS's min_vruntime), kept monotonic."""
        if not self._busy:
            return self._floor  # nothing runs, so nothing waits
        now, vrs = self.env.now, self._vr
        least = self._heap[0][0] if self._heap else math.inf
        for core in self._cores:
            if core is not None:
                v = vrs[core[0]] + (now - core[2])
                if v < least:
                    least = v
        if least > self._floor:
            self._floor = least
        return self._floor

    def _most(self, least: float) -> float:
        """The most virtual runtime among runnable processes; ``least`` if none is runnable."""
        return max([self._running_vr(i) for i, c in enumerate(self._cores) if c is not None]
                   + [entry[0] for entry in self._heap], default=least)

    def _settle(self, i: int) -> None:
        """Credit core ``i``'s running process with the CPU it has had since its last settling."""
        core = self._cores[i]
        now = self.env.now
        ran = now - core[2]
        if ran > 0:
            self._vr[core[0]] += ran
            core[1] -= ran
            core[2] = now

    def _start(self, i: int, owner: object, work_s: float, done: simpy.Event) -> None:
        if self._cores[i] is None:
            self._busy += 1
        now = self.env.now
        self._cores[i] = [owner, work_s, now, now, done, 0]
        self._schedule(i)

    def _next_tick(self, picked: float, now: float) -> float:
        """The first tick after ``now`` at which a job picked at ``picked`` has run its slice; with
        no tick (``tick_s`` None), the moment its slice runs out."""
        due = picked + self.slice_s
        if self.tick_s is None:
            return due if due > now else now + self.slice_s
        tick = math.ceil((due if due > now else now) / self.tick_s - 1e-9) * self.tick_s
        return tick if tick > now else tick + self.tick_s

    def _schedule(self, i: int) -> None:
        """The next event of core ``i``: its job's end, or the next tick it could be preempted at."""
        core = self._cores[i]
        delay = core[1]
        if self._heap:
            now = self.env.now
            to_tick = self._next_tick(core[3], now) - now
            if to_tick < delay:
                delay = to_tick
        self._token += 1
        core[5] = token = self._token
        self.env.timeout(delay if delay > 0 else 0.0).callbacks.append(lambda _ev: self._event(i, token))

    def _send_back(self, i: int) -> None:
        self._settle(i)
        owner, left, _, _, done, _ = self._cores[i]
        heappush(self._heap, (self._vr[owner], self._seq, owner, left, done))
        self._seq += 1
        self.preemptions += 1

    def _event(self, i: int, token: int) -> None:
        core = self._cores[i]
        if core is None or core[5] != token:
            return  # rescheduled since
        now = self.env.now
        self._advance()
        self._settle(i)
        if core[1] > 1e-12:  # a tick: switch to a waiting process that has had less, if any
            if self._heap and self._heap[0][0] < self._vr[core[0]]:
                self._send_back(i)
                _, _, owner, work, done = heappop(self._heap)
                self._start(i, owner, work, done)
            else:
                if self.tick_s is None:
                    core[3] = now  # still the best: a new slice (EEVDF renews its deadline)
                self._schedule(i)
            return
        owner, done = core[0], core[4]
        if owner.__class__ is _Anonymous:
            del self._vr[owner]
        self._jobs -= 1
        if self._heap:  # the next takes the core before anyone woken below can
            _, _, owner, work, nxt = heappop(self._heap)
            self._start(i, owner, work, nxt)
        else:
            self._cores[i] = None
            self._busy -= 1
            self._idle_since[i] = now
        _fire(done)


class TimeSliced(_SharedCores):
    """``servers`` cores shared in time slices, first come, first served (round robin).

    A job runs on a free core for up to ``slice_s``; with work left and others waiting it goes to
    the back of the queue. A process that wakes waits its turn: no one is preempted for it. A
    burst shorter than the slice runs to its end (M/D/1 for short bursts); bursts far longer than
    the slice share the core as processor sharing does. Worker processes taking turns stay out of
    step. This is how the lab's host shared a core on another day (``benchmarks/cpu_sharing.py``,
    2026-12-06: four processes cycling 2.7 ms of CPU, a 5-ms sleep and 0.7 ms of CPU, 283
    cycles/s with the core 100% busy, the 2.7-ms burst 6.9 ms long; 1.4-ms slices here: 294, 100%,
    6.1 ms; ``FairShare``: 255, 87%, 9.2 ms), and Flask's four workers with it (saturated with
    their core 98% busy; preempted 1.2-1.7 times a request, these slices 0.5-1.7 times).

    ``owner`` is accepted for ``FairShare``'s interface and not used: turns do not depend on who
    has had the CPU. The wake-up cost is ``FairShare``'s.
    """

    def __init__(self, env: simpy.Environment, servers: int, slice_s: float, wake_s: float = 0.0,
                 cold_s: tuple[float, float] = (0.0, 0.0)) -> None:
        super().__init__(env, servers, slice_s, wake_s, cold_s)
        self._queue: deque[tuple[float, simpy.Event]] = deque()

    def run(self, work_s: float, owner: object = None) -> simpy.Event:
        """An event that fires once ``work_s`` seconds of CPU have been served."""
        done = self.env.event()
        if work_s <= 0:
            done.succeed()
            return done
        self._advance()
        self._jobs += 1
        if self._busy < self.servers:
            # the idle cores' idle-since times, as a stack: the job takes the core idle the shortest,
            # the warmest (cores are alike here; only how long one idled matters)
            cold = self._cold_share(self.env.now - self._idle_since.pop())
            if cold:
                self.wakes += cold
                work_s += self.wake_s * cold
            self._start(work_s, done)
        else:
            self._queue.append((work_s, done))
        return done

    def _start(self, work_s: float, done: simpy.Event) -> None:
        self._busy += 1
        ran = work_s if work_s <= self.slice_s else self.slice_s
        self.env.timeout(ran).callbacks.append(lambda _ev: self._end_slice(work_s - ran, done))

    def _end_slice(self, left_s: float, done: simpy.Event) -> None:
        self._advance()
        self._busy -= 1
        finished = left_s <= 1e-12
        if not finished:
            if self._queue:
                self.preemptions += 1
            self._queue.append((left_s, done))
        if self._queue:  # the next job takes the core before anyone woken below can
            self._start(*self._queue.popleft())
        else:
            self._idle_since.append(self.env.now)
        if finished:
            self._jobs -= 1
            _fire(done)


class _Anonymous:
    """The process of a job run without an owner: one of its own."""

    __slots__ = ()
