"""Peak memory growth of a call, from the process's resident set (Linux)."""

from __future__ import annotations

from typing import Callable


def _proc_status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_memory_growth(fn: Callable[[], object]) -> int:
    """Bytes the process's peak resident set grew to above its size before `fn` (Linux)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # Resets VmHWM to the current resident set.
    before = _proc_status("VmRSS")
    fn()
    return _proc_status("VmHWM") - before


