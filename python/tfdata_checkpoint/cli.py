"""The `tfdata-checkpoint` command line: demo, inspect, verify."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from typing import Any, Callable

_STEP = re.compile(r"-(\d+)$")
# State files: TensorFlow's `checkpoint` and ours, `checkpoint_<prefix>`.
_STATE_FILE = re.compile(r"checkpoint(?:_[^.]+)?")


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _prefixes(path: str) -> list[str]:
    """Checkpoint prefixes at `path`: a directory (all of them) or one prefix."""
    import tensorflow as tf

    if tf.io.gfile.isdir(path):
        from tfdata_checkpoint.index_format import IndexFormat, index_format

        found = tf.io.gfile.glob(os.path.join(path, "*.index"))
        # A model directory also holds TF tensor bundles (model.ckpt-*, and
        # input.ckpt-* of TF's own hook): not ours to describe or verify.
        bundles = [p for p in found if index_format(p) is IndexFormat.TF_BUNDLE]
        if bundles:
            print(f"skipping {len(bundles)} TensorFlow tensor bundle(s) (model checkpoints or "
                  "TF's own input checkpoints)", file=sys.stderr)
        prefixes = [p[: -len(".index")] for p in found if p not in bundles]
        return sorted(prefixes, key=lambda p: (_step(p) is None, _step(p) or 0, p))
    path = path.removesuffix(".index")
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"no checkpoint at {path} (no {path}.index) and no such directory")
    return [path]


def _step(prefix: str) -> int | None:
    match = _STEP.search(prefix)
    return int(match.group(1)) if match else None


def _describe(prefix: str, verify: bool) -> dict[str, Any]:
    from tfdata_checkpoint.iterator_state import describe_checkpoint

    return describe_checkpoint(prefix, verify=verify)


def _cmd_inspect(args: argparse.Namespace) -> int:
    prefixes = _prefixes(args.path)
    if not prefixes:
        print(f"no checkpoints in {args.path}")
        return 1
    rows = []
    for prefix in prefixes:
        info = _describe(prefix, verify=False)
        created = datetime.datetime.fromtimestamp(info["created_unix_micros"] / 1e6)
        rows.append({
            "prefix": prefix,
            "step": _step(prefix),
            "created": created.isoformat(sep=" ", timespec="seconds"),
            "bytes": info["total_bytes"],
            "shards": len(info["shards"]),
            "entries": info["num_entries"],
            "tensors": info["num_tensors"],
            "tf_version": info["tf_version"],
            "format": info["format_version"],
            "element_spec": info["element_spec"],
        })
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ["prefix", "step", "created", "bytes", "shards", "entries", "tf_version"]
    table = [header] + [[str(r[h]) for h in header] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    import tensorflow as tf

    from tfdata_checkpoint import state_file

    prefixes = _prefixes(args.path)
    if not prefixes:
        print(f"no checkpoints in {args.path}")
        return 1
    bad = 0
    for prefix in prefixes:
        try:
            info = _describe(prefix, verify=True)
        except tf.errors.OpError as e:
            bad += 1
            print(f"DAMAGED {prefix}: {type(e).__name__}: {e.message.splitlines()[0]}")
        else:
            print(f"OK      {prefix} ({info['total_bytes']} bytes in {len(info['shards'])} shards)")
    bad_states = 0
    for path in _state_files(args.path):
        try:
            state_file.decode(_read_bytes(path), path)
        except tf.errors.DataLossError as e:
            bad_states += 1
            print(f"DAMAGED {path}: {e.message}")
        else:
            print(f"OK      {path} (state file)")
    print(f"{len(prefixes) - bad} good, {bad} damaged")
    if bad_states:
        print(f"{bad_states} damaged state file(s)")
    return 0 if bad == 0 and bad_states == 0 else 2


def _state_files(path: str) -> list[str]:
    """The state files (`checkpoint`, `checkpoint_<prefix>`) in directory `path`."""
    import tensorflow as tf

    if not tf.io.gfile.isdir(path):
        return []
    names = tf.io.gfile.listdir(path)
    return [os.path.join(path, n) for n in sorted(names)
            if _STATE_FILE.fullmatch(n) and not tf.io.gfile.isdir(os.path.join(path, n))]


def _read_bytes(path: str) -> bytes:
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "rb") as f:
        return f.read()


def _cmd_demo(args: argparse.Namespace) -> int:
    from tfdata_checkpoint import demo

    return demo.run(steps=args.steps, interrupt_at=args.interrupt_at, save_every=args.save_every,
                    buffer_mib=args.buffer_mib, directory=args.dir)


def _cmd_bench(args: argparse.Namespace) -> int:
    from tfdata_checkpoint import benchmark

    scenarios = []
    if args.only in ("all", "main"):
        scenarios += benchmark.default_scenarios(args.buffer_mib)
    if args.only in ("all", "scaling"):
        scenarios += benchmark.scaling_scenarios(args.scaling)
    if args.repeats < 1:
        raise ValueError("--repeats must be at least 1")
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="tfdc-bench-") as tmp:
        results = benchmark.run(scenarios, args.repeats, tmp)
    hook_stall = None
    if args.only in ("all", "main") and not args.no_hook:
        from tfdata_checkpoint import bench_hook

        if bench_hook.available():
            hook_stall = bench_hook.run(
                benchmark.Scenario(f"Estimator, shuffle {args.buffer_mib} MiB / 4 MiB elements",
                                   args.buffer_mib, 4096),
                steps=args.hook_steps, save_steps=args.hook_save_steps,
                step_ms=args.hook_step_ms)
        else:
            print("No Estimator in this TensorFlow: skipping the hook stall comparison.")
    paths = benchmark.save_results(results, args.out, args.name, hook_stall=hook_stall)
    with open(paths["markdown"]) as f:
        print(f.read())
    print("Wrote " + ", ".join(paths.values()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfdata-checkpoint",
        description="Fast, sharded, background checkpoints of tf.data iterator state.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="train on synthetic data, get interrupted, resume, and check the stream",
        description="Runs a training loop over a shuffled synthetic dataset that saves its "
        "input pipeline in the background, interrupts it, resumes it from the checkpoint, "
        "and checks that the resumed stream is exactly the uninterrupted one.",
    )
    demo.add_argument("--steps", type=int, default=300, help="training steps in all")
    demo.add_argument("--interrupt-at", type=int, default=170, help="step of the interruption")
    demo.add_argument("--save-every", type=int, default=50, help="save every N steps")
    demo.add_argument("--buffer-mib", type=int, default=64, help="shuffle buffer size in MiB")
    demo.add_argument("--dir", default=None, help="checkpoint directory (default: a temp dir)")
    demo.set_defaults(func=_cmd_demo)

    inspect = sub.add_parser("inspect", help="list checkpoints in a directory, or one prefix",
                             description="Lists checkpoints: step, time, size, shards, "
                             "entries and the TensorFlow version that wrote them.")
    inspect.add_argument("path", help="checkpoint directory or prefix")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(func=_cmd_inspect)

    verify = sub.add_parser("verify", help="check every checksum; exit 0 only if all good",
                            description="Reads every byte of every checkpoint at PATH and "
                            "checks every checksum, and (for a directory) that its state files "
                            "(checkpoint, checkpoint_<prefix>) are whole. Exit status 0 only "
                            "when all are good.")
    verify.add_argument("path", help="checkpoint directory or prefix")
    verify.set_defaults(func=_cmd_verify)

    bench = sub.add_parser(
        "bench", help="measure checkpoint cost against TensorFlow's own path",
        description="Measures save, background stall, restore, memory and disk use on large "
        "buffers, side by side with tf.train.Checkpoint on the same iterator and with the raw "
        "speed of the same disk, in one run. Writes JSON, a markdown table and a PNG plot.")
    bench.add_argument("--buffer-mib", type=int, default=1024,
                       help="buffer size of the main scenarios (default 1024)")
    bench.add_argument("--scaling", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096],
                       help="buffer sizes (MiB) of the scaling sweep")
    bench.add_argument("--only", choices=["all", "main", "scaling"], default="all",
                       help="which scenarios to run")
    bench.add_argument("--repeats", type=int, default=3, help="runs per scenario (median)")
    bench.add_argument("--dir", default=None,
                       help="directory on the disk to measure (default: the system temp dir)")
    bench.add_argument("--out", default="bench/results", help="where to write the results")
    bench.add_argument("--name", default="results", help="base name of the result files")
    bench.add_argument("--no-hook", action="store_true",
                       help="skip the Estimator hook stall comparison (TF <= 2.15 only)")
    bench.add_argument("--hook-steps", type=int, default=60,
                       help="training steps of the hook stall comparison")
    bench.add_argument("--hook-save-steps", type=int, default=20,
                       help="save interval (steps) of the hook stall comparison")
    bench.add_argument("--hook-step-ms", type=float, default=100.0,
                       help="simulated model compute per step (ms) in the hook comparison")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tfdata-checkpoint` command."""
    _quiet_tensorflow()
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"tfdata-checkpoint {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        import tensorflow as tf

        if isinstance(e, tf.errors.OpError):
            print(f"tfdata-checkpoint {args.command}: error: {e.message.splitlines()[0]}",
                  file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
