"""The `tfdata-checkpoint` command line: demo, inspect, verify, bench.

The command runs through `tfdata_checkpoint_cli`, which loads this file without
the `tfdata_checkpoint` package: nothing here may import the package (or
TensorFlow) at module level, so that `--help` needs neither and the log level is
set before TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from typing import Any, Callable

# Exit statuses.
EXIT_OK = 0
EXIT_ERROR = 1  # Could not run: bad arguments, no such path, no checkpoints.
EXIT_DAMAGED = 2  # A checkpoint or state file failed its checks.
EXIT_NOT_OURS = 3  # Not a tfdata-checkpoint checkpoint (e.g. a TensorFlow tensor bundle).

_EXIT_STATUSES = (
    "Exit status: 0 all good; 1 could not run (bad arguments, no such path, no checkpoints); "
    "2 a checkpoint (or state file) is damaged; 3 not a tfdata-checkpoint checkpoint (e.g. a "
    "TensorFlow model checkpoint).")

_STEP = re.compile(r"-(\d+)$")
# State files: TensorFlow's `checkpoint` and ours, `checkpoint_<prefix>`.
_STATE_FILE = re.compile(r"checkpoint(?:_[^.]+)?")
# What eager op errors carry around their message: "{{function_node __wrapped__Op_device_...}}"
# before it and "[Op:Name]" (and " name: ...") after it.
_OP_DECORATIONS = re.compile(r"^\{\{function_node [^}]*\}\}\s*|\s*\[Op:[^\]]*\](?: name:.*)?$")
_TF_BUNDLE_NOTE = ("a TensorFlow tensor bundle (a model checkpoint, or TF's own input "
                   "checkpoint): not a tfdata-checkpoint checkpoint")


class NotOurCheckpoint(Exception):
    """The path holds checkpoints, but none written by this library."""


class _Parser(argparse.ArgumentParser):
    """Bad arguments exit with EXIT_ERROR: argparse's 2 is EXIT_DAMAGED here."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message}\n")


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _import_tensorflow_quietly() -> None:
    """Imports TensorFlow and the library with file descriptor 2 silenced.

    From TF 2.16 on, absl logs before TF's log level applies ("All log messages before
    absl::InitializeLog() ...", the oneDNN notice), whatever TF_CPP_MIN_LOG_LEVEL says. What
    was written is shown if the import fails.
    """
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401

            import tfdata_checkpoint  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def op_message(error: Any) -> str:
    """The first line of a `tf.errors.OpError`'s message, without the op decorations."""
    lines = error.message.strip().splitlines() or [""]
    return _OP_DECORATIONS.sub("", lines[0].strip())


def _prefixes(path: str) -> list[str]:
    """Our checkpoint prefixes at `path`: a directory (all of them) or one prefix.

    Raises:
      FileNotFoundError: no such directory or prefix.
      NotOurCheckpoint: only TensorFlow tensor bundles are there.
    """
    import tensorflow as tf

    from tfdata_checkpoint._src.storage.index_format import IndexFormat, index_format

    if tf.io.gfile.isdir(path):
        # listdir, not glob: a directory's name may hold glob characters ("run[1]").
        found = [os.path.join(path, name) for name in tf.io.gfile.listdir(path)
                 if name.endswith(".index")]
        # A model directory also holds TF tensor bundles (model.ckpt-*, and
        # input.ckpt-* of TF's own hook): not ours to describe or verify.
        bundles = [p for p in found if index_format(p) is IndexFormat.TF_BUNDLE]
        prefixes = [p[: -len(".index")] for p in found if p not in bundles]
        if bundles and not prefixes:
            raise NotOurCheckpoint(f"no tfdata-checkpoint checkpoints in {path}, only "
                                   f"{len(bundles)} TensorFlow tensor bundle(s)")
        if bundles:
            print(f"skipping {len(bundles)} TensorFlow tensor bundle(s) (model checkpoints or "
                  "TF's own input checkpoints)", file=sys.stderr)
        return sorted(prefixes, key=lambda p: (_step(p) is None, _step(p) or 0, p))
    path = path.removesuffix(".index")
    if not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"no checkpoint at {path} (no {path}.index) and no such directory")
    if index_format(path + ".index") is IndexFormat.TF_BUNDLE:
        raise NotOurCheckpoint(f"{path} is {_TF_BUNDLE_NOTE}")
    return [path]


def _step(prefix: str) -> int | None:
    match = _STEP.search(prefix)
    return int(match.group(1)) if match else None


def _describe_each(
    prefixes: Sequence[str], *, verify: bool
) -> Iterator[tuple[str, dict[str, Any] | None, str | None]]:
    """(prefix, its description, None), or (prefix, None, why it is damaged) for a damaged one."""
    import tensorflow as tf

    from tfdata_checkpoint._src.iterator_state import describe_checkpoint

    for prefix in prefixes:
        try:
            info = describe_checkpoint(prefix, verify=verify)
        except tf.errors.OpError as e:
            yield prefix, None, f"{type(e).__name__}: {op_message(e)}"
        else:
            yield prefix, info, None


def _element_spec(spec: Any) -> list[dict[str, Any]] | None:
    """The element spec of a description, with dtype names ("int64") for enum numbers."""
    if spec is None:
        return None
    import tensorflow as tf

    def name(dtype: Any) -> Any:
        try:
            return tf.dtypes.as_dtype(dtype).name
        except (TypeError, ValueError):
            return dtype

    return [dict(component, dtype=name(component.get("dtype"))) for component in spec]


def _spec_text(spec: list[dict[str, Any]] | None) -> str:
    """`int64[] float32[3,?]`: one dtype and shape per component (`-` when none was recorded)."""
    if not spec:
        return "-"

    def shape(dims: Any) -> str:
        if dims is None:
            return "[<unknown rank>]"
        return "[" + ",".join("?" if d is None or d < 0 else str(d) for d in dims) + "]"

    return " ".join(f"{c.get('dtype')}{shape(c.get('shape'))}" for c in spec)


def _cmd_inspect(args: argparse.Namespace) -> int:

    prefixes = _prefixes(args.path)
    if not prefixes:
        print(f"no checkpoints in {args.path}")
        return EXIT_ERROR
    rows = []
    damaged = 0
    for prefix, info, damage in _describe_each(prefixes, verify=False):
        if damage is not None:
            # Go on: the other checkpoints are worth listing.
            damaged += 1
            print(f"DAMAGED {prefix}: {damage}", file=sys.stderr)
            continue
        created = datetime.datetime.fromtimestamp(info["created_unix_micros"] / 1e6)
        rows.append({
            "prefix": prefix,
            "step": _step(prefix),
            "created": created.isoformat(sep=" ", timespec="seconds"),
            # Its own bytes, in its own shards; an incremental save also reads
            # bytes of earlier checkpoints' shards.
            "bytes": info["total_bytes"],
            "referenced_bytes": info.get("referenced_bytes", 0),
            "referenced_files": info.get("referenced_files", []),
            "shards": len(info["shards"]),
            "entries": info["num_entries"],
            "tensors": info["num_tensors"],
            "tf_version": info["tf_version"],
            "format": info["format_version"],
            "element_spec": _element_spec(info.get("element_spec")),
        })
    status = EXIT_DAMAGED if damaged else EXIT_OK
    if args.json:
        print(json.dumps(rows, indent=2))
        return status
    if not rows:
        return status
    header = ["prefix", "step", "created", "bytes", "referenced_bytes", "shards", "entries",
              "tf_version", "element_spec"]
    table = [header] + [
        [str(r[h]) for h in header[:-1]] + [_spec_text(r["element_spec"])] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return status


def _cmd_verify(args: argparse.Namespace) -> int:
    import tensorflow as tf

    from tfdata_checkpoint._src.storage import state_file
    prefixes = _prefixes(args.path)
    if not prefixes:
        print(f"no checkpoints in {args.path}")
        return EXIT_ERROR
    bad = 0
    for prefix, info, damage in _describe_each(prefixes, verify=True):
        if damage is not None:
            bad += 1
            print(f"DAMAGED {prefix}: {damage}")
        else:
            print(f"OK      {prefix} ({_size_text(info)})")
    bad_states = 0
    for path in _state_files(args.path):
        try:
            state_file.decode(_read_bytes(path), path)
        except tf.errors.DataLossError as e:
            bad_states += 1
            print(f"DAMAGED {path}: {op_message(e)}")
        else:
            print(f"OK      {path} (state file)")
    print(f"{len(prefixes) - bad} good, {bad} damaged")
    if bad_states:
        print(f"{bad_states} damaged state file(s)")
    return EXIT_OK if bad == 0 and bad_states == 0 else EXIT_DAMAGED


def _size_text(info: dict[str, Any]) -> str:
    """`N bytes in S shards`, and what it reads of other checkpoints' shards, if anything."""
    text = f"{info['total_bytes']} bytes in {len(info['shards'])} shards"
    referenced = info.get("referenced_files") or []
    if referenced:
        text += f", {info.get('referenced_bytes', 0)} bytes referenced in {len(referenced)} files"
    return text


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
    from tfdata_checkpoint.tools import demo
    return demo.run(steps=args.steps, interrupt_at=args.interrupt_at, save_every=args.save_every,
                    buffer_mib=args.buffer_mib, directory=args.dir)


def _tf_version_tag() -> str:
    import tensorflow as tf

    return "tf" + ".".join(tf.__version__.split(".")[:2])


def _cmd_bench_incremental(args: argparse.Namespace) -> int:
    from tfdata_checkpoint.tools.bench import incremental, incremental_report

    options = incremental.check(incremental.Options(
        parts=tuple(args.parts), buffer_mib=args.buffer_mib, repeats=args.repeats,
        ks=args.incremental_k, step_ms=args.incremental_step_ms,
        hook_steps=args.incremental_hook_steps, save_steps=args.incremental_save_steps,
        links=args.chain_links))
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="tfdc-bench-incremental-") as tmp:
        results = incremental.run(options, tmp)
    name = args.name or f"incremental_{_tf_version_tag()}"
    command = "tfdata-checkpoint " + " ".join(getattr(args, "argv", ["bench"]))
    paths = incremental_report.save_results(results, args.out, name, command)
    with open(paths["markdown"]) as f:
        print(f.read())
    print("Wrote " + ", ".join(paths.values()))
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.only == "incremental":
        return _cmd_bench_incremental(args)
    from tfdata_checkpoint.tools.bench import measure, report
    from tfdata_checkpoint.tools.bench.scenario import (
        Scenario,
        default_scenarios,
        scaling_scenarios,
    )

    scenarios = []
    if args.only in ("all", "main"):
        scenarios += default_scenarios(args.buffer_mib)
    if args.only in ("all", "scaling"):
        scenarios += scaling_scenarios(args.scaling)
    if args.repeats < 1:
        raise ValueError("--repeats must be at least 1")
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="tfdc-bench-") as tmp:
        results = measure.run(scenarios, args.repeats, tmp)
    hook_stall = None
    if args.only in ("all", "main") and not args.no_hook:
        from tfdata_checkpoint.tools.bench import hook_stall as hook_stall_bench
        if hook_stall_bench.available():
            hook_stall = hook_stall_bench.run(
                Scenario(f"Estimator, shuffle {args.buffer_mib} MiB / 4 MiB elements",
                         args.buffer_mib, 4096),
                steps=args.hook_steps, save_steps=args.hook_save_steps,
                step_ms=args.hook_step_ms)
        else:
            print("No Estimator in this TensorFlow: skipping the hook stall comparison.")
    paths = report.save_results(results, args.out, args.name or "results",
                                hook_stall=hook_stall)
    with open(paths["markdown"]) as f:
        print(f.read())
    print("Wrote " + ", ".join(paths.values()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tfdata-checkpoint",
        description="Fast, sharded, background checkpoints of tf.data iterator state.",
        epilog=_EXIT_STATUSES,
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
                             "entries, the TensorFlow version that wrote them and the element "
                             "spec (dtype and shape of each component). A checkpoint whose "
                             "index cannot be read is named on stderr and the others listed.",
                             epilog=_EXIT_STATUSES)
    inspect.add_argument("path", help="checkpoint directory or prefix")
    inspect.add_argument("--json", action="store_true", help="print JSON")
    inspect.set_defaults(func=_cmd_inspect)

    verify = sub.add_parser("verify", help="check every checksum; exit 0 only if all good",
                            description="Reads every byte of every checkpoint at PATH and "
                            "checks every checksum, and (for a directory) that its state files "
                            "(checkpoint, checkpoint_<prefix>) are whole. TensorFlow's own "
                            "checkpoints (tensor bundles) in a directory are skipped.",
                            epilog=_EXIT_STATUSES)
    verify.add_argument("path", help="checkpoint directory or prefix")
    verify.set_defaults(func=_cmd_verify)

    bench = sub.add_parser(
        "bench", help="measure checkpoint cost against TensorFlow's own path",
        description="Measures save, background stall, restore, memory and disk use on large "
        "buffers, side by side with tf.train.Checkpoint on the same iterator and with the raw "
        "speed of the same disk, in one run. Writes JSON, a markdown table and a PNG plot. "
        "--only incremental runs the benchmark of incremental saves instead (issue 14; "
        "bench/README.md): bytes after k new elements, the frequent-save Estimator job, "
        "restore from the end of a chain, many small elements.")
    bench.add_argument("--buffer-mib", type=int, default=1024,
                       help="buffer size of the main scenarios (default 1024)")
    bench.add_argument("--scaling", type=int, nargs="+", default=[256, 512, 1024, 2048, 4096],
                       help="buffer sizes (MiB) of the scaling sweep")
    bench.add_argument("--only", choices=["all", "main", "scaling", "incremental"],
                       default="all",
                       help="which scenarios to run ('all': main and scaling; 'incremental': "
                       "the incremental-save benchmark alone)")
    bench.add_argument("--repeats", type=int, default=3, help="runs per scenario (median)")
    bench.add_argument("--dir", default=None,
                       help="directory on the disk to measure (default: the system temp dir)")
    bench.add_argument("--out", default="bench/results", help="where to write the results")
    bench.add_argument("--name", default=None,
                       help="base name of the result files (default 'results'; "
                       "'incremental_tf<X.Y>' with --only incremental)")
    bench.add_argument("--no-hook", action="store_true",
                       help="skip the Estimator hook stall comparison (TF <= 2.15 only)")
    bench.add_argument("--hook-steps", type=int, default=60,
                       help="training steps of the hook stall comparison")
    bench.add_argument("--hook-save-steps", type=int, default=20,
                       help="save interval (steps) of the hook stall comparison")
    bench.add_argument("--hook-step-ms", type=float, default=100.0,
                       help="simulated model compute per step (ms) in the hook comparison")
    incremental = bench.add_argument_group(
        "incremental (--only incremental; sizes scale with --buffer-mib)")
    incremental.add_argument("--parts", nargs="+", default=["bytes", "stall", "chain", "small"],
                             choices=["bytes", "stall", "chain", "small"],
                             help="which parts to run (default all)")
    incremental.add_argument("--incremental-k", type=int, nargs="+", default=[1, 8, 32],
                             help="new elements between the two saves of the bytes part")
    incremental.add_argument("--incremental-step-ms", type=float, nargs="+", default=[5.0, 10.0],
                             help="step times (ms) of the frequent-save Estimator job")
    incremental.add_argument("--incremental-hook-steps", type=int, default=100,
                             help="training steps of each frequent-save job")
    incremental.add_argument("--incremental-save-steps", type=int, default=10,
                             help="save interval (steps) of the frequent-save jobs")
    incremental.add_argument("--chain-links", type=int, default=10,
                             help="incremental saves after the full one in the chain part")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tfdata-checkpoint` command."""
    _quiet_tensorflow()  # Before anything imports TensorFlow: it reads this once.
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        _import_tensorflow_quietly()
        return func(args)
    except NotOurCheckpoint as e:
        print(f"tfdata-checkpoint {args.command}: {e}", file=sys.stderr)
        return EXIT_NOT_OURS
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"tfdata-checkpoint {args.command}: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        import tensorflow as tf

        if isinstance(e, tf.errors.OpError):
            print(f"tfdata-checkpoint {args.command}: error: {op_message(e)}", file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
