"""The benchmark's report: JSON, markdown tables of medians and ratios against TensorFlow, a plot."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from tfdata_checkpoint.tools.bench.result import Result

MIB = 1 << 20


def _row(r: Result) -> list[str]:
    m = r.median
    size = r.scenario["buffer_bytes"]
    mem = r.memory_growth
    return [
        r.scenario["name"],
        f"{m('tf_save'):.2f} s",
        f"{m('ours_save_nofsync'):.2f} s",
        f"**{m('tf_save') / m('ours_save_nofsync'):.1f}x**",
        f"{m('ours_save_fsync'):.2f} s",
        f"{m('disk_write_fsync') / m('ours_save_fsync') * 100:.0f}%",
        f"{m('ours_async_stall') * 1e3:.1f} ms",
        f"{m('ours_async_commit_fsync'):.2f} s",
        f"{m('tf_restore'):.2f} s",
        f"{m('ours_restore'):.2f} s",
        f"**{m('tf_restore') / m('ours_restore'):.1f}x**",
        f"{mem.get('tf_save', 0) / MIB:.0f} / {mem.get('ours_save', 0) / MIB:.0f} MiB",
        (f"{mem.get('tf_restore_fresh_process', 0) / size:.2f}x / "
         f"{mem.get('ours_restore_fresh_process', 0) / size:.2f}x"),
        f"{r.bytes_on_disk.get('tf', 0) / MIB:.0f} / {r.bytes_on_disk.get('ours', 0) / MIB:.0f} MiB",
        f"{size / MIB / m('ours_save_nofsync'):.0f} MiB/s",
    ]


_HEADER = [
    "scenario", "TF save", "ours save", "save speed-up", "ours save + fsync",
    "of fsync'd disk speed", "background stall", "background commit (fsync)", "TF restore",
    "ours restore", "restore speed-up", "save memory growth TF / ours",
    "restore memory growth TF / ours (fresh process, x buffer)", "on disk TF / ours",
    "ours save throughput",
]


def markdown(results: list[Result], machine: dict) -> str:
    """A markdown table of medians, with the machine and the number of repeats."""
    lines = [
        "| " + " | ".join(_HEADER) + " |",
        "|" + "---|" * len(_HEADER),
    ]
    lines += ["| " + " | ".join(_row(r)) + " |" for r in results]
    repeats = sorted({r.repeats for r in results})
    checks = "; ".join(f"{r.scenario['name']}: {r.checks}" for r in results)
    machine_line = ", ".join(f"{k} {v}" for k, v in machine.items())
    return (
        f"Medians over {'/'.join(map(str, repeats))} runs. Machine: {machine_line}.\n\n"
        + "\n".join(lines)
        + f"\n\nRestores checked against the uninterrupted iterator: {checks}\n"
    )


def plot_scaling(results: list[Result], path: str) -> None:
    """Save and restore time against buffer size, ours against TensorFlow's, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r.scenario["buffer_bytes"] / MIB for r in results]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    series = [
        ("tf_save", "TF save (tf.train.Checkpoint)", "tab:red", "-"),
        ("tf_restore", "TF restore", "tab:red", "--"),
        ("ours_save_nofsync", "ours save", "tab:blue", "-"),
        ("ours_save_fsync", "ours save + fsync", "tab:cyan", "-"),
        ("ours_restore", "ours restore", "tab:blue", "--"),
        ("disk_write_fsync", "raw disk write + fsync", "tab:gray", ":"),
    ]
    for key, label, color, style in series:
        ax.plot(sizes, [r.median(key) for r in results], style, color=color, marker="o",
                label=label)
    ax.set_xlabel("shuffle buffer (MiB, 4 MiB float32 elements)")
    ax.set_ylabel("seconds (median)")
    ax.set_title("Iterator checkpoint cost against buffer size")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def hook_stall_markdown(stall: dict) -> str:
    """The per-save training stall of TF's hook and ours on the same Estimator job."""
    tf_, ours = stall["tf"], stall["ours"]
    return (
        f"Per-save training stall on an Estimator job ({stall['scenario']}, "
        f"{stall['steps']} steps of {stall['step_ms']:.0f} ms, a save every "
        f"{stall['save_steps']} steps; medians over the "
        f"{len(tf_['save_stalls']) - 1} periodic saves):\n\n"
        "| hook | stall per save | other steps | final save + wait in end() | whole job |\n"
        "|---|---|---|---|---|\n"
        f"| TF `CheckpointInputPipelineHook` | {tf_['median_save_stall'] * 1e3:.0f} ms | "
        f"{tf_['median_other_step_overhead'] * 1e3:.2f} ms | {tf_['end_seconds']:.2f} s | "
        f"{tf_['train_seconds']:.1f} s |\n"
        f"| tfdata-checkpoint (background) | {ours['median_save_stall'] * 1e3:.1f} ms | "
        f"{ours['median_other_step_overhead'] * 1e3:.2f} ms | {ours['end_seconds']:.2f} s | "
        f"{ours['train_seconds']:.1f} s |\n\n"
        f"Ours / TF's stall: **{stall['ratio'] * 100:.2f}%**.\n"
    )


def machine_description() -> dict:
    """Where a result came from."""
    import platform

    import tensorflow as tf

    import tfdata_checkpoint as tc

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / (1 << 30), 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "tfdata_checkpoint": tc.__version__,
    }


def save_results(results: list[Result], out_dir: str, name: str = "results",
                 hook_stall: dict | None = None) -> dict:
    """Writes JSON, a markdown table and, with several sizes, a PNG plot; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = {"json": os.path.join(out_dir, f"{name}.json"),
             "markdown": os.path.join(out_dir, f"{name}.md")}
    with open(paths["json"], "w") as f:
        json.dump({"machine": machine_description(), "results": [asdict(r) for r in results],
                   "hook_stall": hook_stall}, f, indent=2)
    with open(paths["markdown"], "w") as f:
        f.write(markdown(results, machine_description()))
        if hook_stall is not None:
            f.write("\n" + hook_stall_markdown(hook_stall))
    scaling = [r for r in results if r.scenario["name"].startswith("scaling")]
    if len(scaling) >= 2:
        paths["plot"] = os.path.join(out_dir, f"{name}.png")
        plot_scaling(scaling, paths["plot"])
    return paths
