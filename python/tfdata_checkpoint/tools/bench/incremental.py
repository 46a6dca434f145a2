"""The benchmark of issue 14 (incremental saves): which parts run, in which order, with what.

Parts (each in its own module):
- `bytes`: bytes a save writes after k new elements (`incremental_bytes`).
- `stall`: the frequent-save Estimator job, TF's hook against ours (`frequent_saves`, TF <= 2.15).
- `chain`: restore from the end of a chain against a full checkpoint (`chain_restore`).
- `small`: 1 GiB of 4 KiB elements (`small_elements`).

`tfdata-checkpoint bench --only incremental` runs them (see tools/cli.py) and
`incremental_report` writes the JSON and markdown.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from tfdata_checkpoint.tools.bench import (
    chain_restore,
    frequent_saves,
    hook_stall,
    incremental_bytes,
    small_elements,
)

PARTS = ("bytes", "stall", "chain", "small")


@dataclass
class Options:
    """What to run. Sizes scale with `buffer_mib` (1024 is the issue's)."""

    parts: tuple[str, ...] = PARTS
    buffer_mib: int = 1024
    repeats: int = 3
    ks: list[int] = field(default_factory=lambda: [1, 8, 32])
    step_ms: list[float] = field(default_factory=lambda: [5.0, 10.0])
    hook_steps: int = 100
    save_steps: int = 10
    hooks: tuple[str, ...] = frequent_saves.HOOKS
    links: int = 10
    small_k: int = 8
    small_hook_steps: int = 40
    small_hook_step_ms: float = 200.0
    small_hook_repeats: int | None = None


def check(options: Options) -> Options:
    """`options` if every value is usable; ValueError naming the one that is not."""
    unknown = sorted(set(options.parts) - set(PARTS))
    if unknown or not options.parts:
        raise ValueError(f"--parts must be some of {list(PARTS)}, got {list(options.parts)}")
    if options.repeats < 1:
        raise ValueError("--repeats must be at least 1")
    if options.buffer_mib < 4:
        raise ValueError("--buffer-mib must be at least 4 (one 4 MiB element)")
    if not options.ks or min(options.ks) < 1:
        raise ValueError(f"--incremental-k must be positive, got {options.ks}")
    if options.save_steps < 1 or options.hook_steps < options.save_steps:
        raise ValueError("--incremental-save-steps must be at least 1 and at most "
                         "--incremental-hook-steps")
    unknown_hooks = sorted(set(options.hooks) - set(frequent_saves.HOOKS))
    if unknown_hooks or "tf" not in options.hooks:
        raise ValueError(f"hooks must include 'tf' and be some of {list(frequent_saves.HOOKS)}")
    return options


def run(options: Options, directory: str) -> dict:
    """Runs the parts of `options` in `directory` (on the disk to be measured)."""
    check(options)
    out: dict = {"options": {k: (list(v) if isinstance(v, tuple) else v)
                             for k, v in vars(options).items()},
                 "load_average": {"start": os.getloadavg()}, "wall_seconds": {}}

    def timed(name, fn):
        t0 = time.time()
        out[name] = fn()
        out["wall_seconds"][name] = time.time() - t0

    if "bytes" in options.parts:
        timed("bytes", lambda: incremental_bytes.run(
            incremental_bytes.bytes_scenarios(options.buffer_mib), options.ks, options.repeats,
            directory))
    if "stall" in options.parts:
        if hook_stall.available():
            timed("stall", lambda: frequent_saves.run(
                frequent_saves.estimator_scenario(options.buffer_mib), options.step_ms,
                options.hook_steps, options.save_steps, options.repeats, directory,
                options.hooks))
        else:
            out["stall"] = {"skipped": "no Estimator in this TensorFlow"}
    if "chain" in options.parts:
        timed("chain", lambda: chain_restore.run(
            chain_restore.chain_scenarios(options.buffer_mib), options.links, options.repeats,
            directory))
    if "small" in options.parts:
        timed("small", lambda: small_elements.run(
            options.buffer_mib, options.repeats, directory, k=options.small_k,
            hook_steps=options.small_hook_steps, hook_save_steps=options.save_steps,
            hook_step_ms=options.small_hook_step_ms, hook_repeats=options.small_hook_repeats))
    out["load_average"]["end"] = os.getloadavg()
    return out
