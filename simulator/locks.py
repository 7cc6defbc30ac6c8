"""A lean FIFO semaphore for the model's hot path.

SimPy's ``Resource`` makes an event for every request and every release,
even when nobody waits. Worker slots, pools, GILs and event loops are taken
and given back several times per request, so this semaphore grants at once
when it can (``acquire`` returns None, nothing to yield) and makes an event
only for a request that has to wait. ``release`` hands the unit straight to
the longest waiter: first come, first served, like SimPy's Resource.
"""

from __future__ import annotations

from collections import deque

import simpy

__all__ = ["Semaphore", "Task"]


class Semaphore:
    __slots__ = ("env", "capacity", "in_use", "waiters")

    def __init__(self, env: simpy.Environment, capacity: int) -> None:
        self.env = env
        self.capacity = capacity
        self.in_use = 0
        self.waiters: deque[simpy.Event] = deque()

    def acquire(self) -> simpy.Event | None:
        """None if a unit was free (it is now yours), else an event that fires when it is."""
        if self.in_use < self.capacity:
            self.in_use += 1
            return None
        ev = self.env.event()
        self.waiters.append(ev)
        return ev

    def release(self) -> None:
        if self.waiters:
            self.waiters.popleft().succeed()  # the unit passes on; in_use is unchanged
        else:
            self.in_use -= 1

    def queued(self) -> int:
        return len(self.waiters)

    def cancel(self, ev: simpy.Event) -> None:
        """Give up waiting (a timeout). If the unit was granted meanwhile, return it."""
        if ev.triggered:
            self.release()
        else:
            self.waiters.remove(ev)


class Task:
    """Drives a generator on SimPy events, like ``simpy.Process`` without its overhead.

    A Process costs two events of its own, one to start and one to end; an
    open-loop request that nobody waits for needs neither. The generator
    starts at once, inside the caller's step, and resumes exactly as a
    Process would on the events it yields (the model never fails an event).
    """

    __slots__ = ("_gen", "_resume_cb")

    def __init__(self, generator) -> None:
        self._gen = generator
        self._resume_cb = self._resume
        self._resume(None)

    def _resume(self, event: simpy.Event | None) -> None:
        value = None if event is None else event._value
        send = self._gen.send
        while True:
            try:
                event = send(value)
            except StopIteration:
                return
            callbacks = event.callbacks
            if callbacks is not None:  # not processed yet: resume when it is
                callbacks.append(self._resume_cb)
                return
            value = event._value  # already processed: carry on now
