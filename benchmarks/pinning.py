"""Pin the benchmark's own process to some CPUs for a block, then give it back every CPU it had."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator


@contextlib.contextmanager
def pinned(cpus: Iterable[int] | None) -> Iterator[None]:
    """This process on ``cpus`` inside the block (None: left where it is). A benchmark that pinned
    itself and stayed pinned would leave the next one, in the same process, a single CPU to share
    with what it measures (make bench runs them one after another)."""
    if cpus is None or not hasattr(os, "sched_setaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)
