"""Every benchmark, one after the other: `make bench`.

Prints figures and ratios against their targets. Exits 0 whatever the
figures (a shared, noisy machine is no place for a hard gate); pass
--strict to exit 1 when a target is missed, --quick to skip the 12-minute
fidelity repeat.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import cold_core  # noqa: E402
import cpu_sharing  # noqa: E402
import fidelity  # noqa: E402
import host_speed  # noqa: E402
import loadgen_capacity  # noqa: E402
import simulator_speed  # noqa: E402


def main() -> int:
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    affinity = sorted(allowed) if allowed is not None else "n/a"
    print(f"machine: {os.cpu_count()} cores, affinity {affinity}, {time.strftime('%Y-%m-%d %H:%M')}")
    print("\n== simulator speed ==")
    rows = simulator_speed.main()
    print("\n== load generator capacity ==")
    rows += loadgen_capacity.main()
    print("\n== host speed: how steady this machine's CPU is (1 minute) ==")
    host_speed.main(60.0, max(allowed) if allowed is not None else None)
    print("\n== cold core: the CPU the same work takes after the core idled (10 s) ==")
    cold_core.main()
    print("\n== CPU sharing: worker processes on one core, the host against the model (36 s) ==")
    cpu_sharing.main()
    if "--quick" not in sys.argv:
        print("\n== fidelity: simulated versus measured (about 12 minutes) ==")
        rows += fidelity.main()
    print("\n== targets ==")
    for name, figure, target, met in rows:
        print(f"  {name:<45} {figure:12,.3f}  target {target:>10,}  {'met' if met else 'MISSED'}")
    missed = [name for name, *_, met in rows if not met]
    return 1 if missed and "--strict" in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
