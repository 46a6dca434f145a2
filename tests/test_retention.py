"""CheckpointRetention: which committed checkpoints exist, are latest, are kept."""

from __future__ import annotations

import os

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tfdata_checkpoint._src.retention import CheckpointRetention

BASENAME = "input.ckpt"
LATEST = "checkpoint_input"


@pytest.fixture
def iterator():
    it = iter(tf.data.Dataset.range(1000).map(lambda x: tf.fill([64], x)).prefetch(2))
    next(it)
    return it


def make(directory, max_to_keep=3, num_parts=1):
    return CheckpointRetention(
        str(directory),
        BASENAME,
        latest_filename=LATEST,
        max_to_keep=max_to_keep,
        num_parts=num_parts,
    )


def save(retention, iterator, step, record=True):
    for part in range(retention.num_parts):
        tc.save_iterator(iterator, retention.part_prefix(step, part), num_shards=2, fsync=False)
    if record:
        return retention.record(step)
    return []


def files_of(directory, step):
    return sorted(
        n for n in tf.io.gfile.listdir(str(directory)) if n.startswith(f"{BASENAME}-{step}.")
    )


def test_prefix_layout(tmp_path):
    r = make(tmp_path, num_parts=3)
    assert r.prefix(7) == f"{tmp_path}/input.ckpt-7"
    assert r.part_prefix(7, 2) == f"{tmp_path}/input.ckpt.iterator2/input.ckpt-7"
    assert r.step_of(r.prefix(12)) == 12
    assert r.step_of(f"{tmp_path}/input.ckpt-12.index") is None
    assert r.step_of(f"{tmp_path}/other.ckpt-12") is None
    assert make("ram://a/").prefix(1) == "ram://a/input.ckpt-1"
    with pytest.raises(ValueError, match="part"):
        r.part_prefix(1, 3)


def test_keeps_newest_and_deletes_only_after_a_newer_commit(tmp_path, iterator):
    r = make(tmp_path, max_to_keep=2)
    save(r, iterator, 1)
    save(r, iterator, 2)
    assert r.committed_checkpoints() == [r.prefix(1), r.prefix(2)]
    # Step 3 written but not recorded: 1 must survive until 3 is recorded.
    save(r, iterator, 3, record=False)
    assert files_of(tmp_path, 1)
    deleted = r.record(3)
    assert deleted == [r.prefix(1)]
    assert files_of(tmp_path, 1) == []
    assert files_of(tmp_path, 2) and files_of(tmp_path, 3)
    assert r.committed_checkpoints() == [r.prefix(2), r.prefix(3)]
    assert tf.train.latest_checkpoint(str(tmp_path), latest_filename=LATEST) == r.prefix(3)
    state = tf.train.get_checkpoint_state(str(tmp_path), latest_filename=LATEST)
    assert list(state.all_model_checkpoint_paths) == [r.prefix(2), r.prefix(3)]
    # Relative paths: the directory can move.
    with open(os.path.join(tmp_path, LATEST)) as f:
        assert str(tmp_path) not in f.read()


def test_deleting_step_1_leaves_step_10_and_11(tmp_path, iterator):
    r = make(tmp_path, max_to_keep=2)
    for step in (1, 10, 11):
        save(r, iterator, step)
    assert files_of(tmp_path, 1) == []
    assert len(files_of(tmp_path, 10)) == 3  # index + 2 shards
    assert len(files_of(tmp_path, 11)) == 3


def test_max_to_keep_none_keeps_all(tmp_path, iterator):
    r = make(tmp_path, max_to_keep=None)
    for step in range(6):
        save(r, iterator, step)
    assert [r.step_of(p) for p in r.committed_checkpoints()] == list(range(6))


def test_uncommitted_is_not_listed_and_cannot_be_recorded(tmp_path, iterator):
    r = make(tmp_path)
    save(r, iterator, 1)
    save(r, iterator, 2, record=False)
    os.remove(r.prefix(2) + ".index")  # shards without index: a write that never committed
    assert r.committed_checkpoints() == [r.prefix(1)]
    with pytest.raises(ValueError, match="not committed"):
        r.record(2)


def test_commit_missing_from_state_file_is_found_by_scanning(tmp_path, iterator):
    """A crash between the commit and the state-file update loses nothing."""
    r = make(tmp_path)
    save(r, iterator, 4)
    save(r, iterator, 6, record=False)
    assert tf.train.latest_checkpoint(str(tmp_path), latest_filename=LATEST) == r.prefix(4)
    assert r.latest() == r.prefix(6)
    assert r.committed_checkpoints() == [r.prefix(4), r.prefix(6)]
    # An unlisted checkpoint older than the state file's latest counts as oldest.
    save(r, iterator, 2, record=False)
    assert r.committed_steps() == [2, 4, 6]
    r.record(6)
    assert r.committed_steps() == [2, 4, 6]


def test_order_of_saving_wins_over_step_order(tmp_path, iterator):
    """After a restart from an older step, the new checkpoint is the latest."""
    r = make(tmp_path, max_to_keep=3)
    for step in (2, 4, 6):
        save(r, iterator, step)
    save(r, iterator, 3)
    assert r.committed_steps() == [4, 6, 3]
    assert r.latest() == r.prefix(3)
    assert files_of(tmp_path, 2) == []


def test_leftovers_of_writes_that_never_committed_are_removed_by_the_next_commit(
    tmp_path, iterator
):
    r = make(tmp_path)
    save(r, iterator, 1)
    save(r, iterator, 2, record=False)
    os.remove(r.prefix(2) + ".index")
    # The temporary index a killed write leaves behind.
    open(r.prefix(2) + ".index.tmp-0123456789abcdef", "w").close()
    save(r, iterator, 7, record=False)
    os.remove(r.prefix(7) + ".index")  # killed at a step above the next commit's
    # A killed re-save of committed step 1: shards under another nonce.
    save(r, iterator, 1, record=False)
    orphans = [n for n in files_of(tmp_path, 1) if ".data-" in n]
    save(r, iterator, 1, record=False)
    assert set(orphans) & set(files_of(tmp_path, 1)) == set()  # replaced, deleted natively
    open(r.prefix(1) + ".data-0123456789abcdef-00000-of-00001", "w").close()
    open(r.prefix(1) + ".index.tmp-0123456789abcdef", "w").close()
    open(os.path.join(tmp_path, LATEST + ".tmp" + "ab" * 16), "w").close()
    # Another writer's files (another basename) are not ours to touch.
    open(os.path.join(tmp_path, "input_worker_1.ckpt-2.data-0123456789abcdef-00000-of-00001"),
         "w").close()
    assert files_of(tmp_path, 2) and files_of(tmp_path, 7)
    save(r, iterator, 5)
    assert files_of(tmp_path, 2) == []
    assert files_of(tmp_path, 7) == []
    assert len(files_of(tmp_path, 1)) == 3  # index + its own 2 shards
    assert sorted(n for n in os.listdir(tmp_path) if not n.startswith(BASENAME)) == [
        LATEST, "input_worker_1.ckpt-2.data-0123456789abcdef-00000-of-00001"]
    assert r.committed_steps() == [1, 5]


def test_leftovers_are_removed_when_the_commit_is_recorded_inside_a_graph(tmp_path, iterator):
    # A hook records its commits while its graph is the default one: reading
    # the committed index to find orphan shards must still run eagerly.
    r = make(tmp_path)
    save(r, iterator, 1)
    orphan = r.prefix(1) + ".data-0123456789abcdef-00000-of-00001"
    open(orphan, "w").close()
    save(r, iterator, 2, record=False)
    with tf.Graph().as_default():
        r.record(2)
    assert not os.path.exists(orphan)
    assert len(files_of(tmp_path, 1)) == 3  # index + its own 2 shards
    assert r.committed_steps() == [1, 2]


def test_multi_part_commits_only_when_every_part_has(tmp_path, iterator):
    r = make(tmp_path, num_parts=2)
    save(r, iterator, 1)
    tc.save_iterator(iterator, r.part_prefix(2, 0), fsync=False)
    assert r.committed_steps() == [1]
    assert not r.is_committed(2)
    tc.save_iterator(iterator, r.part_prefix(2, 1), fsync=False)
    assert r.committed_steps() == [1, 2]
    r.delete(1)
    assert r.committed_steps() == [2]
    assert files_of(tmp_path, 1) == []
    assert files_of(r.part_directory(1), 1) == []
    assert len(files_of(r.part_directory(1), 2)) >= 2


def test_choose_for_model_step(tmp_path, iterator):
    r = make(tmp_path, max_to_keep=None)
    assert r.choose_for_step(5) is None
    for step in (2, 4, 8):
        save(r, iterator, step)
    assert r.choose_for_step(4) == 4
    assert r.choose_for_step(7) == 4
    assert r.choose_for_step(1) is None


def test_works_on_ram_filesystem(iterator):
    directory = f"ram://retention-{os.getpid()}"
    r = make(directory, max_to_keep=1)
    save(r, iterator, 1)
    save(r, iterator, 2)
    assert r.committed_checkpoints() == [directory + "/input.ckpt-2"]
    assert tf.train.latest_checkpoint(directory, latest_filename=LATEST) == r.prefix(2)
    assert not tf.io.gfile.exists(r.prefix(1) + ".index")


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"directory": ""}, "directory"),
        ({"basename": ""}, "basename"),
        ({"basename": "a/b"}, "basename"),
        ({"latest_filename": ""}, "latest_filename"),
        ({"max_to_keep": -1}, "max_to_keep"),
        ({"num_parts": 0}, "num_parts"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, kwargs, name):
    args = {"directory": str(tmp_path), "basename": BASENAME, "latest_filename": LATEST}
    args.update(kwargs)
    directory = args.pop("directory")
    basename = args.pop("basename")
    with pytest.raises(ValueError, match=name):
        CheckpointRetention(directory, basename, **args)
