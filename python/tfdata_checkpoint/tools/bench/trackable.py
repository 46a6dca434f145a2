"""tf.train.Checkpoint holding the raw iterator vs. a TrackableIterator, side by side in one run.

    python -m tfdata_checkpoint.tools.bench.trackable [--buffer-mib 1024] [--element-kib 4096]
        [--repeats 3] [--dir DIR] [--out FILE.md]

One iterator's shuffle buffer is filled with incompressible float32 data. Then,
`repeats` times over, alternating, the same iterator is written by
`tf.train.Checkpoint(iterator=it).write` (TF's path: the state serialized and
snappy-compressed into the bundle) and by
`tf.train.Checkpoint(iterator=TrackableIterator(it)).write` (ours, with and
without fsync), and read back into a fresh iterator (checked against the
original's next elements). With `enable_async`, the stall (until `write`
returns) and the commit (until `sync()` returns) are timed. Each timed save
starts with the other side's files deleted. Medians of the repeats.

First-touch memory: the first save of each kind in a process touches fresh
memory (TF's serialization buffers; our staging), which costs page faults the
later ones do not pay. One warm-up save of each kind runs first and is not in
the medians; its time is reported apart ("warm-up" rows).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf

import tfdata_checkpoint as tc

MIB = 1 << 20


def _dataset(buffer_elements: int, element_floats: int) -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    block = tf.constant(rng.random(element_floats, dtype=np.float32))
    return (
        tf.data.Dataset.range(1 << 40)
        # Incompressible and distinct per element: the block rolled by the id.
        .map(lambda i: (i, tf.roll(block, tf.cast(i % element_floats, tf.int32), 0) + 0.0))
        .shuffle(buffer_elements, seed=1)
    )


def _size(directory: str, start: str) -> int:
    return sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory)
               if n.startswith(start))


def _clear(directory: str) -> None:
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif not name.endswith(".lock"):
            os.remove(path)


def run(buffer_mib: int, element_kib: int, repeats: int, directory: str) -> dict:
    element_floats = element_kib * 1024 // 4
    buffer_elements = max(1, buffer_mib * 1024 // element_kib)
    make = lambda: _dataset(buffer_elements, element_floats)
    it = iter(make())
    next(it)  # fills the shuffle buffer
    raw = tf.train.Checkpoint(iterator=it)
    ours = tf.train.Checkpoint(iterator=tc.TrackableIterator(it))
    ours_nosync = tf.train.Checkpoint(iterator=tc.TrackableIterator(it, fsync=False))
    async_options = tf.train.CheckpointOptions(enable_async=True)
    times: dict[str, list[float]] = {}
    sizes = {}

    def timed(figure: str, action) -> None:
        started = time.perf_counter()
        action()
        times.setdefault(figure, []).append(time.perf_counter() - started)

    def check_restore(kind: str, prefix: str) -> None:
        fresh = iter(make())
        ckpt = (tf.train.Checkpoint(iterator=fresh) if kind == "tf"
                else tf.train.Checkpoint(iterator=tc.TrackableIterator(fresh)))
        timed(f"{kind} restore", lambda: ckpt.read(prefix))
        # The same iterator state: the next elements agree with a second restore's.
        got = [int(next(fresh)[0]) for _ in range(3)]
        again = iter(make())
        tf.train.Checkpoint(iterator=tc.TrackableIterator(again) if kind != "tf"
                            else again).read(prefix)
        assert got == [int(next(again)[0]) for _ in range(3)], kind

    for round_ in range(repeats + 1):
        warm = round_ == 0
        suffix = " (warm-up)" if warm else ""
        _clear(directory)
        timed("tf save" + suffix, lambda: raw.write(os.path.join(directory, "tf")))
        sizes["tf"] = _size(directory, "tf")
        if not warm:
            check_restore("tf", os.path.join(directory, "tf"))
        _clear(directory)
        timed("ours save (fsync)" + suffix, lambda: ours.write(os.path.join(directory, "ours")))
        sizes["ours"] = _size(directory, "ours")
        if not warm:
            check_restore("ours", os.path.join(directory, "ours"))
        _clear(directory)
        timed("ours save (no fsync)" + suffix,
              lambda: ours_nosync.write(os.path.join(directory, "nosync")))
        _clear(directory)
        timed("ours async stall" + suffix,
              lambda: ours.write(os.path.join(directory, "async"), options=async_options))
        timed("ours async commit" + suffix, ours.sync)
        # TF's path with enable_async, for comparison of the stall.
        _clear(directory)
        timed("tf async stall" + suffix,
              lambda: raw.write(os.path.join(directory, "tfasync"), options=async_options))
        timed("tf async commit" + suffix, raw.sync)
    _clear(directory)
    return {"buffer_mib": buffer_mib, "element_kib": element_kib, "repeats": repeats,
            "times": times, "sizes": sizes, "tf": tf.__version__}


def report(result: dict) -> str:
    times = result["times"]
    med = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        f"# tf.train.Checkpoint: raw iterator vs TrackableIterator (TF {result['tf']})",
        "",
        (f"Shuffle buffer {result['buffer_mib']} MiB of {result['element_kib']} KiB float32 "
         f"elements (incompressible), medians of {result['repeats']} runs after one warm-up, "
         "both sides in the same process, alternating, each timed save starting with the other "
         "side's files deleted. `python -m tfdata_checkpoint.tools.bench.trackable`."),
        "",
        "| figure | median (s) | runs (s) | vs TF save |",
        "|---|---|---|---|",
    ]
    tf_save = med["tf save"]
    for figure, values in times.items():
        if "warm-up" in figure:
            continue
        ratio = f"{tf_save / med[figure]:.1f}x faster" if "save" in figure or "stall" in figure \
            or "commit" in figure else ""
        if figure.endswith("restore"):
            ratio = ""
        lines.append(f"| {figure} | {med[figure]:.3f} | "
                     f"{', '.join(f'{v:.3f}' for v in values)} | {ratio} |")
    lines += [
        "",
        (f"Restore speed-up: {med['tf restore'] / med['ours restore']:.1f}x "
         f"(TF {med['tf restore']:.3f} s, ours {med['ours restore']:.3f} s, fresh iterator in "
         "the same process: includes first touch of the restored buffer's memory on both sides)."),
        "",
        ("Warm-up runs (first save of each kind in the process, first-touch memory included; "
         "not in the medians):"),
        "",
    ]
    lines += [f"- {k}: {v[0]:.3f} s" for k, v in times.items() if "warm-up" in k]
    lines += ["", (f"On disk: TF {result['sizes']['tf'] / MIB:.0f} MiB, ours "
                   f"{result['sizes']['ours'] / MIB:.0f} MiB (ours: our files + TF's bundle).")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--buffer-mib", type=int, default=1024)
    parser.add_argument("--element-kib", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    directory = args.dir or tempfile.mkdtemp(prefix="tfdc-bench-trackable-")
    os.makedirs(directory, exist_ok=True)
    text = report(run(args.buffer_mib, args.element_kib, args.repeats, directory))
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
