"""Peak memory of a benchmark's child process (shared by the size, feature and volume benchmarks)."""

from __future__ import annotations


def hwm_mb() -> float:
    """Peak resident memory of this process so far (``VmHWM`` from ``/proc/self/status``), in MB.

    Not ``ru_maxrss``: Linux carries it over ``exec``, so a child would report its parent's memory
    at the moment of the fork.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (these benchmarks need Linux)")
