"""Every file name in a checkpoint directory, defined once for the Python side.

The native writer names the files it writes in `cc/io/checkpoint_paths.cc`;
`tests/test_layout.py` holds the two definitions together. In a directory:

    <basename>-<step>.index                                 the checkpoint (committed)
    <basename>-<step>.index.tmp-<nonce>                     its index being written
    <basename>-<step>.data-<nonce>-<shard>-of-<shards>      its shards
    <basename>.iterator<i>/<basename>-<step>.*              iterator i > 0 of the checkpoint
    <latest_filename>                                       the state file (`checkpoint_input`)
    <latest_filename>.tmp<32 hex digits>                    the state file being written
    <basename>.lock                                         the writer lock (local paths only)

with TF's hook's names: `<basename>` = `<checkpoint prefix>.ckpt` and
`<latest_filename>` = `checkpoint_<checkpoint prefix>`, where the checkpoint
prefix is `input`, or `input_<task_type>_<task_id>` for one of several worker
replicas.

`<nonce>` is 16 hex digits, one per save, so that the shards of a killed save
of a step are told apart from those of the save of the same step that
committed later. Nothing here touches a filesystem.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from tfdata_checkpoint._src import arguments

INDEX_SUFFIX = ".index"
_TEMP_INDEX_INFIX = ".index.tmp-"
_SHARD_INFIX = ".data-"
_PART_DIRECTORY_INFIX = ".iterator"
LOCK_SUFFIX = ".lock"
# file_io.atomic_write_string_to_file writes "<name>.tmp<32 hex digits>" first.
STATE_FILE_TEMP_SUFFIX = re.compile(r"\.tmp[0-9a-f]{32}")


DEFAULT_CHECKPOINT_PREFIX = "input"


def task_checkpoint_prefix(task_type: str, task_id: int) -> str:
    """`input_<task_type>_<task_id>`, TF's name for one replica's input checkpoints."""
    return f"{DEFAULT_CHECKPOINT_PREFIX}_{task_type}_{task_id}"


def basename_for(checkpoint_prefix: str) -> str:
    """The checkpoint file name before `-<step>` for a checkpoint prefix: `input.ckpt`."""
    return f"{checkpoint_prefix}.ckpt"


def latest_filename_for(checkpoint_prefix: str) -> str:
    """The state file's name for a checkpoint prefix: `checkpoint_input`."""
    return f"checkpoint_{checkpoint_prefix}"


def latest_filename_for_basename(basename: str) -> str:
    """The state file's name for a checkpoint basename: `checkpoint_eval` for `eval.ckpt`.

    The inverse of `basename_for` where there is one (`input.ckpt` gives
    `checkpoint_input`), else `checkpoint_<basename>`.
    """
    suffix = basename_for("")
    stem = basename[: -len(suffix)] if basename.endswith(suffix) and basename != suffix else basename
    return latest_filename_for(stem)


DEFAULT_BASENAME = basename_for(DEFAULT_CHECKPOINT_PREFIX)
DEFAULT_LATEST_FILENAME = latest_filename_for(DEFAULT_CHECKPOINT_PREFIX)

# The subdirectory of a Keras `backup_dir` holding tfdata_checkpoint.keras.BackupAndRestore's
# input checkpoints (default basename and state file inside). Python only: the native writer
# is given prefixes in it.
KERAS_BACKUP_INPUT_DIRECTORY = "input_pipeline"

# Keras 3's BackupAndRestore overwrites `latest.weights.h5` and `training_metadata.json` in
# place: a kill mid-write leaves a file that cannot be loaded. Ours writes each under these names
# in `backup_dir` first and renames it over Keras's (save_weights wants a `.weights.h5` ending).
KERAS3_WEIGHTS_BEING_WRITTEN = "latest.writing.weights.h5"
KERAS3_METADATA_BEING_WRITTEN = "training_metadata.json.writing"


def join_path(directory: str, name: str) -> str:
    """`directory/name` for local paths and URIs (`ram://`, `gs://`) alike."""
    if not directory:
        return name
    return directory + name if directory.endswith("/") else f"{directory}/{name}"


def index_path(prefix: str) -> str:
    """The index of the checkpoint `prefix`: it exists exactly when the checkpoint does."""
    return prefix + INDEX_SUFFIX


def shard_name(basename: str, nonce: int, shard: int, num_shards: int) -> str:
    """The name of shard `shard` of `num_shards` written by the save `nonce`."""
    return f"{basename}{_SHARD_INFIX}{nonce:016x}-{shard:05d}-of-{num_shards:05d}"


def temp_index_name(basename: str, nonce: int) -> str:
    """The name of the index of the save `nonce` before it is renamed into place."""
    return f"{basename}{_TEMP_INDEX_INFIX}{nonce:016x}"


def prefix_directory(prefix: str) -> str:
    """The directory of a prefix, as the native writer computes it (it keys background saves).

    "" for a bare name, "/" at the root; a URI at its root keeps "scheme://".
    """
    slash = prefix.rfind("/")
    if slash < 0:
        return ""
    if slash == 0:
        return "/"
    if prefix[slash - 2 : slash + 1] == "://":
        return prefix[: slash + 1]
    return prefix[:slash]


def lock_name(basename: str) -> str:
    """The name of the writer lock file of `basename`."""
    return basename + LOCK_SUFFIX


def is_state_file_temp(name: str, latest_filename: str) -> bool:
    """Whether `name` is a state file `latest_filename` that was being written."""
    return name.startswith(latest_filename) and bool(
        STATE_FILE_TEMP_SUFFIX.fullmatch(name[len(latest_filename) :])
    )


@dataclass(frozen=True)
class CheckpointLayout:
    """The names of the checkpoints of one writer: a directory and a basename.

    Attributes:
      directory: the checkpoint directory (any TensorFlow filesystem).
      basename: file name of a checkpoint before `-<step>`, e.g. `input.ckpt`.
      latest_filename: name of the state file, e.g. `checkpoint_input`.
      num_parts: how many iterators each checkpoint holds.

    Raises:
      ValueError: on an empty `directory` / `basename` / `latest_filename`, or
        a `num_parts` below 1.
    """

    directory: str
    basename: str
    latest_filename: str
    num_parts: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "directory", os.fspath(self.directory))
        if not self.directory:
            raise ValueError("directory must not be empty")
        if not self.basename or "/" in self.basename:
            raise ValueError(f"basename must be a non-empty file name, got {self.basename!r}")
        if not self.latest_filename or "/" in self.latest_filename:
            raise ValueError(
                f"latest_filename must be a non-empty file name, got {self.latest_filename!r}"
            )
        object.__setattr__(
            self, "num_parts", arguments.integer("num_parts", self.num_parts, minimum=1)
        )

    def part_directory(self, part: int) -> str:
        """The directory holding part `part` (one per iterator)."""
        if part == 0:
            return self.directory
        # A directory of its own per extra iterator: the native writer runs one
        # background save per directory, so the parts are written in parallel
        # instead of each waiting for the previous one.
        return join_path(self.directory, f"{self.basename}{_PART_DIRECTORY_INFIX}{part}")

    def prefix(self, step: int) -> str:
        """The prefix naming the checkpoint of `step` (its part 0)."""
        return self.part_prefix(step, 0)

    def part_prefix(self, step: int, part: int) -> str:
        """The prefix of iterator `part`'s files in the checkpoint of `step`."""
        if not 0 <= part < self.num_parts:
            raise ValueError(f"part must be in [0, {self.num_parts}), got {part!r}")
        return join_path(self.part_directory(part), f"{self.basename}-{int(step)}")

    def step_of(self, prefix: str) -> int | None:
        """The step of a checkpoint prefix of this layout, or None."""
        match = _step_pattern(self.basename).fullmatch(os.path.basename(os.fspath(prefix)))
        return int(match.group(1)) if match else None

    def step_of_index(self, name: str) -> int | None:
        """The step of an index file name (`<basename>-<step>.index`), or None."""
        if not name.endswith(INDEX_SUFFIX):
            return None
        return self.step_of(name[: -len(INDEX_SUFFIX)])

    def step_of_file(self, name: str) -> int | None:
        """The step of any file of a checkpoint (index, index being written, shard), or None."""
        match = _file_pattern(self.basename).match(name)
        return int(match.group(1)) if match else None

    def parse_leftover(self, name: str) -> tuple[int, str | None] | None:
        """(step, nonce) of a shard, (step, None) of a temporary index, else None."""
        match = _leftover_pattern(self.basename).fullmatch(name)
        if not match:
            return None
        return int(match.group(1)), match.group(3)

    def lock_name(self) -> str:
        """The name of this writer's lock file in `directory`."""
        return lock_name(self.basename)

    def incremental_key(self, part: int) -> str:
        """The key under which the native writer keeps what iterator `part` last saved.

        A save with this key may reference the tensors of the last checkpoint
        committed under it instead of writing them again (docs/FORMAT.md,
        format 2.0): one key per writer of one directory, basename and part.
        """
        return join_path(self.part_directory(part), self.basename)


def _step_pattern(basename: str) -> re.Pattern[str]:
    return re.compile(re.escape(basename) + r"-(\d+)")


def _file_pattern(basename: str) -> re.Pattern[str]:
    # Matched by pattern, not a glob: basenames may hold glob characters.
    return re.compile(re.escape(basename) + r"-(\d+)\.(?:index|data-)")


def _leftover_pattern(basename: str) -> re.Pattern[str]:
    return re.compile(
        re.escape(basename)
        + r"-(\d+)\.(?:(index\.tmp-[0-9a-f]+)|data-([0-9a-f]+)-\d+-of-\d+)"
    )


# --- Our files beside a TensorFlow checkpoint (TrackableIterator, make_saveable_from_iterator) ---
#
# For a TF checkpoint `<dir>/<name>` (e.g. `ckpt-3`, written by tf.train.Checkpoint or a
# tf.compat.v1 Saver), the input state of iterator `<part>` saved by the save `<token>` is our
# checkpoint
#
#     <dir>/<name>.tfdc-<token>-<part>.index / .index.tmp-<nonce> / .data-<nonce>-...
#
# and TF's bundle holds, under `<object key>/.ATTRIBUTES/TFDC_INPUT_CHECKPOINT`, the file
# name `<name>.tfdc-<token>-<part>` (relative, so that the directory can move). `<token>` is
# 16 hex digits, new for every save: a killed rewrite of the same TF checkpoint never mixes
# its files with those the bundle names. TF deletes only `<name>.index` and
# `<name>.data-?????-of-?????`, which none of these names match. The writer of TF
# checkpoints `<base>[-<n>]` holds `<dir>/<base>.tfdc.lock`.
BESIDE_INFIX = ".tfdc-"
REFERENCE_ATTRIBUTE = "TFDC_INPUT_CHECKPOINT"
# What TF's own iterator saves: attribute `ITERATOR`, tensor `<object>/.ATTRIBUTES/ITERATOR_STATE`
# (for restoring a checkpoint written with the raw iterator).
TF_ITERATOR_ATTRIBUTE = "ITERATOR"
TF_ITERATOR_STATE_SUFFIX = "_STATE"
_ATTRIBUTES = "/.ATTRIBUTES/"
_BESIDE_PATTERN = re.compile(
    r"(?P<tf_name>.+)" + re.escape(BESIDE_INFIX) + r"(?P<token>[0-9a-f]{16})-(?P<part>\d+)"
    r"(?P<kind>\.index|\.index\.tmp-[0-9a-f]+|\.data-[0-9a-f]+-\d+-of-\d+)"
)
_BESIDE_NAME_PATTERN = re.compile(
    r"[^/]+" + re.escape(BESIDE_INFIX) + r"[0-9a-f]{16}-\d+"
)
# A TF checkpoint named by CheckpointManager / Checkpoint.save: `<base>-<number>`.
_NUMBERED = re.compile(r"(?P<base>.+)-\d+")


def beside_prefix(tf_prefix: str, token: str, part: int) -> str:
    """Our prefix for iterator `part` of the save `token` of the TF checkpoint `tf_prefix`."""
    return f"{tf_prefix}{BESIDE_INFIX}{token}-{int(part)}"


@dataclass(frozen=True)
class BesideFile:
    """A file of ours beside a TF checkpoint, as parsed from its name."""

    tf_name: str
    token: str
    part: int
    is_index: bool


def parse_beside_file(name: str) -> BesideFile | None:
    """The parts of a file name of ours beside a TF checkpoint, or None."""
    match = _BESIDE_PATTERN.fullmatch(name)
    if not match:
        return None
    return BesideFile(
        match.group("tf_name"), match.group("token"), int(match.group("part")),
        match.group("kind") == INDEX_SUFFIX,
    )


def is_beside_name(name: str) -> bool:
    """Whether `name` is what a TF bundle may reference: `<name>.tfdc-<token>-<part>`."""
    return bool(_BESIDE_NAME_PATTERN.fullmatch(name))


def beside_token(name: str) -> str | None:
    """The token of a referenced name `<name>.tfdc-<token>-<part>`, or None."""
    parsed = parse_beside_file(name + INDEX_SUFFIX)
    return None if parsed is None else parsed.token


def tf_checkpoint_base(tf_name: str) -> str:
    """The name of a TF checkpoint without its number: `ckpt` for `ckpt-3`."""
    match = _NUMBERED.fullmatch(tf_name)
    return match.group("base") if match else tf_name


def beside_lock_basename(base: str) -> str:
    """The basename whose lock (`lock_name`) the writer of TF checkpoints `base` holds."""
    return f"{base}.tfdc"


def reference_key(object_key: str) -> str:
    """The key in TF's bundle of the reference to our files of the object `object_key`."""
    return f"{object_key}{_ATTRIBUTES}{REFERENCE_ATTRIBUTE}"


def is_reference_key(key: str) -> bool:
    """Whether a key of TF's bundle is one of our references."""
    return key.endswith(_ATTRIBUTES + REFERENCE_ATTRIBUTE)


def tf_iterator_state_key(object_key: str) -> str | None:
    """The bundle key of a raw iterator's state, if `object_key` is what TF hands a
    registered saver for it (`<object>/.ATTRIBUTES/ITERATOR`), else None."""
    if object_key.endswith(_ATTRIBUTES + TF_ITERATOR_ATTRIBUTE):
        return object_key + TF_ITERATOR_STATE_SUFFIX
    return None


def split_path(path: str) -> tuple[str, str]:
    """(directory, name) of a path or URI; the directory is "" for a bare name."""
    directory = prefix_directory(path)
    slash = path.rfind("/")
    return directory, path[slash + 1 :]
