"""The file names of a checkpoint: Python's `layout` and the native writer's agree.

The native writer names what it writes in cc/io/checkpoint_paths.cc; the Python
side lists, sweeps and deletes by `tfdata_checkpoint._src.layout`. Each test
fails if one side changes a name without the other.
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tfdata_checkpoint._src import layout
from tfdata_checkpoint._src.storage.index_format import OUR_MAGIC

ROOT = pathlib.Path(__file__).resolve().parent.parent
PATHS_CC = ROOT / "cc" / "io" / "checkpoint_paths.cc"


def _native_format(function: str) -> str:
    """The format string `function` in checkpoint_paths.cc passes to StrFormat / StrCat."""
    source = PATHS_CC.read_text()
    body = re.search(function + r"\(.*?\) \{(.*?)\n\}", source, re.DOTALL)
    assert body, f"{function} not found in {PATHS_CC}"
    literal = re.search(r'"([^"]*)"', body.group(1))
    assert literal, f"no string literal in {function}"
    return literal.group(1)


@pytest.fixture(scope="module")
def source_tree():
    if not PATHS_CC.exists():
        pytest.skip("needs the source tree")


@pytest.mark.usefixtures("source_tree")
def test_names_match_the_native_format_strings():
    # printf's %s %016x %05d mean the same to Python's % operator.
    assert _native_format("IndexPath") == layout.INDEX_SUFFIX
    nonce = 0x0123456789ABCDEF
    assert _native_format("TempIndexPath") % ("run/input.ckpt-7", nonce) == (
        "run/" + layout.temp_index_name("input.ckpt-7", nonce)
    )
    for shard, num_shards in [(0, 1), (3, 16), (12, 123456)]:
        assert _native_format("ShardName") % ("input.ckpt-7", nonce, shard, num_shards) == (
            layout.shard_name("input.ckpt-7", nonce, shard, num_shards)
        )


@pytest.mark.parametrize(
    "prefix, directory",
    [("a", ""), ("/a", "/"), ("d/a", "d"), ("/d/e/a", "/d/e"), ("ram://a", "ram://"),
     ("gs://b/a", "gs://b"), ("file:///a", "file://")],
)
def test_prefix_directory(prefix, directory):
    # The native background saves are keyed by this directory (PrefixDirectory).
    assert layout.prefix_directory(prefix) == directory


def test_written_files_are_the_names_layout_gives(tmp_path):
    checkpoints = layout.CheckpointLayout(str(tmp_path), "input.ckpt", "checkpoint_input")
    it = iter(tf.data.Dataset.range(1000).shuffle(100, seed=1))
    next(it)
    prefix = checkpoints.prefix(12)
    tc.save_iterator(it, prefix, num_shards=3)

    shards = json.loads(tc.ops.describe_iterator_shards(prefix).numpy())["shards"]
    names = sorted(p.name for p in tmp_path.iterdir())
    nonces = {checkpoints.parse_leftover(s["name"])[1] for s in shards}
    assert len(nonces) == 1, shards
    nonce = int(nonces.pop(), 16)
    expected = [layout.shard_name("input.ckpt-12", nonce, i, 3) for i in range(3)]
    assert sorted(s["name"] for s in shards) == expected
    # save_iterator takes no writer lock (the hook and the manager do): no lock file.
    assert names == sorted([*expected, "input.ckpt-12.index"])
    assert checkpoints.step_of_index("input.ckpt-12.index") == 12
    assert all(checkpoints.step_of_file(name) == 12 for name in expected)
    with open(layout.index_path(prefix), "rb") as f:
        assert f.read(len(OUR_MAGIC)) == OUR_MAGIC


def test_parts_and_steps():
    checkpoints = layout.CheckpointLayout("gs://b/run", "input_worker_1.ckpt",
                                          "checkpoint_input_worker_1", num_parts=2)
    assert checkpoints.prefix(5) == "gs://b/run/input_worker_1.ckpt-5"
    assert checkpoints.part_prefix(5, 1) == (
        "gs://b/run/input_worker_1.ckpt.iterator1/input_worker_1.ckpt-5")
    assert checkpoints.step_of("x/input_worker_1.ckpt-5") == 5
    assert checkpoints.step_of("input_worker_1.ckpt-5.index") is None
    assert checkpoints.step_of("input.ckpt-5") is None
    assert checkpoints.parse_leftover("input_worker_1.ckpt-5.index.tmp-00ff") == (5, None)
    assert layout.is_state_file_temp("checkpoint_input_worker_1.tmp" + "a" * 32,
                                     "checkpoint_input_worker_1")
    assert not layout.is_state_file_temp("checkpoint_input_worker_1", "checkpoint_input_worker_1")
    with pytest.raises(ValueError, match="part"):
        checkpoints.part_prefix(5, 2)
    assert layout.basename_for(layout.task_checkpoint_prefix("worker", 1)) == (
        "input_worker_1.ckpt")
    assert layout.latest_filename_for("input") == layout.DEFAULT_LATEST_FILENAME


@pytest.mark.parametrize("bad", [{"directory": ""}, {"basename": "a/b"},
                                 {"latest_filename": ""}, {"num_parts": 0}])
def test_bad_arguments(bad):
    arguments = {"directory": "d", "basename": "b", "latest_filename": "c", "num_parts": 1}
    arguments.update(bad)
    with pytest.raises(ValueError, match=next(iter(bad))):
        layout.CheckpointLayout(**arguments)
