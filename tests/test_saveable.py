"""make_saveable_from_iterator: the input state in a TF1 Saver's checkpoint, by our writer.

Jobs run in fresh processes (`saveable_child.py`), are really killed and restarted,
and their streams are compared element by element with an uninterrupted iterator.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.subprocesses import child_env, worker_command
from tests.support.trackable_pipeline import make_dataset
from tfdata_checkpoint._src import layout
from tfdata_checkpoint._src.iterator_state import describe_checkpoint

HAS_ESTIMATOR = hasattr(tf, "estimator")


def run_child(config: dict, *, killed: bool = False) -> dict | None:
    result = subprocess.run(
        args=[*worker_command("saveable_child"), json.dumps(config)], env=child_env(),
        check=False, capture_output=True,
                            text=True, timeout=600)
    if killed:
        assert result.returncode == -9, result.stderr[-3000:]
        return None
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def uninterrupted(steps: int) -> list[int]:
    it = iter(make_dataset())
    return [int(next(it)[0].numpy()) for _ in range(steps)]


def references(prefix: str) -> list[str]:
    reader = tf.train.load_checkpoint(prefix)
    return [reader.get_tensor(k).decode() for k in reader.get_variable_to_dtype_map()
            if layout.is_reference_key(k)]


@pytest.mark.parametrize("route", ["session", pytest.param("estimator", marks=pytest.mark.skipif(
    not HAS_ESTIMATOR, reason="no tf.estimator in this TensorFlow"))])
def test_killed_job_restarts_exactly(tmp_path, route):
    directory = str(tmp_path / "model")
    run_child({"dir": directory, "steps": 40, "save_every": 5, "route": route, "kill_at": 13},
              killed=True)
    resumed = run_child({"dir": directory, "steps": 24, "save_every": 5, "route": route})
    assert resumed["start"] == 10
    assert resumed["elements"] == uninterrupted(24)[10:]
    # The bundle holds a reference to our files, not the buffer.
    latest = tf.train.latest_checkpoint(directory)
    (name,) = references(latest)
    assert name.startswith(os.path.basename(latest) + layout.BESIDE_INFIX)
    assert os.path.exists(os.path.join(directory, name + ".index"))
    tf_data = sum(os.path.getsize(os.path.join(directory, n)) for n in os.listdir(directory)
                  if n.startswith(os.path.basename(latest) + ".data-"))
    assert tf_data < 64 * 1024  # the shuffle buffer alone is ~1 MiB


def test_saver_rebuilt_from_the_meta_graph_saves_and_restores(tmp_path):
    directory = str(tmp_path / "model")
    first = run_child({"dir": directory, "steps": 10, "save_every": 5, "route": "export"})
    # Fresh processes with no Python-built saveable: the Saver comes from the meta graph.
    second = run_child({"dir": directory, "steps": 20, "save_every": 5, "route": "import"})
    third = run_child({"dir": directory, "steps": 27, "save_every": 5, "route": "import"})
    assert (second["start"], third["start"]) == (10, 20)
    assert first["elements"] + second["elements"] + third["elements"] == uninterrupted(27)


def test_damaged_file_raises_data_loss_naming_it(tmp_path):
    directory = str(tmp_path / "model")
    run_child({"dir": directory, "steps": 10, "save_every": 5, "route": "export"})
    latest = tf.train.latest_checkpoint(directory)
    (name,) = references(latest)
    shard = next(n for n in os.listdir(directory) if n.startswith(name + ".data-"))
    with open(os.path.join(directory, shard), "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    result = subprocess.run(
        [*worker_command("saveable_child"),
         json.dumps({"dir": directory, "steps": 12, "save_every": 5, "route": "import"})],
        check=False, capture_output=True, text=True, timeout=600, env=child_env())
    assert result.returncode != 0
    assert "DataLossError" in result.stderr and shard in result.stderr


@pytest.mark.parametrize("policy", [None, "warn", "ignore", "fail",
                                    tf.data.experimental.ExternalStatePolicy.WARN])
def test_accepts_every_policy_tf_accepts(policy):
    with tf.Graph().as_default():
        iterator = tf.compat.v1.data.make_one_shot_iterator(tf.data.Dataset.range(3))
        saveable = tc.make_saveable_from_iterator(iterator, policy)
        assert saveable.specs[0].name.endswith(layout.REFERENCE_ATTRIBUTE)
        if policy is None:
            tc.make_saveable_from_iterator(iterator)


def test_bad_policy_and_eager_are_value_errors():
    with tf.Graph().as_default():
        iterator = tf.compat.v1.data.make_one_shot_iterator(tf.data.Dataset.range(3))
        with pytest.raises(ValueError, match="external_state_policy"):
            tc.make_saveable_from_iterator(iterator, "sometimes")
    with pytest.raises(ValueError, match="TrackableIterator"):
        tc.make_saveable_from_iterator(iter(tf.data.Dataset.range(3)))


def test_saver_var_list_in_one_process(tmp_path):
    with tf.Graph().as_default():
        iterator = tf.compat.v1.data.make_one_shot_iterator(make_dataset())
        element = iterator.get_next()[0]
        saver = tf.compat.v1.train.Saver([tc.make_saveable_from_iterator(iterator)])
        with tf.compat.v1.Session() as sess:
            for _ in range(6):
                sess.run(element)
            path = saver.save(sess, str(tmp_path / "only_input"))
            expected = [int(sess.run(element)) for _ in range(7)]
        with tf.compat.v1.Session() as sess:
            saver.restore(sess, path)
            assert [int(sess.run(element)) for _ in range(7)] == expected


# --- Retention: our files go with the TF checkpoints the Saver deletes ---


def our_groups(directory: str) -> dict[tuple[str, str], list[str]]:
    """(TF checkpoint name, token) -> our file names of that save."""
    groups: dict[tuple[str, str], list[str]] = {}
    for name in os.listdir(directory):
        parsed = layout.parse_beside_file(name)
        if parsed is not None:
            groups.setdefault((parsed.tf_name, parsed.token), []).append(name)
    return groups


def kept_checkpoints(directory: str) -> list[str]:
    state = tf.train.get_checkpoint_state(directory)
    return [os.path.basename(p) for p in state.all_model_checkpoint_paths]


def tf_checkpoints_on_disk(directory: str) -> list[str]:
    """TF checkpoints whose index exists (a Saver rebuilt in a new process deletes only
    those it saved itself: older ones stay, with ours)."""
    return sorted(n[: -len(".index")] for n in os.listdir(directory)
                  if n.endswith(".index") and layout.parse_beside_file(n) is None)


def named_groups(directory: str, tf_names: list[str]) -> set[tuple[str, str]]:
    return {(n, layout.beside_token(ref)) for n in tf_names
            for ref in references(os.path.join(directory, n))}


def referenced_shards(directory: str, groups: set[tuple[str, str]]) -> set[str]:
    files = set()
    for tf_name, token in groups:
        for name in our_groups(directory)[(tf_name, token)]:
            if name.endswith(layout.INDEX_SUFFIX):
                prefix = os.path.join(directory, name[: -len(layout.INDEX_SUFFIX)])
                files |= set(describe_checkpoint(prefix)["referenced_files"])
    return files


def assert_only_kept(directory: str, *, last_deleted: str | None) -> set[str]:
    """Our files are those of the kept TF checkpoints, the shards they refer to and, if
    given, those of the TF checkpoint the Saver deleted after its last save (swept at the
    next save, or at exit). Returns the shard files of other saves that kept ones refer to."""
    named = named_groups(directory, tf_checkpoints_on_disk(directory))
    groups = our_groups(directory)
    referenced = referenced_shards(directory, named)
    for (tf_name, token), files in groups.items():
        if (tf_name, token) in named or tf_name == last_deleted:
            continue
        assert set(files) <= referenced, (tf_name, token, files, sorted(groups))
    assert named <= set(groups)
    return referenced - {f for g in named for f in groups[g]}


def sweep_now(directory: str) -> list[str]:
    latest = tf.train.latest_checkpoint(directory)
    return [p.decode() for p in tc.ops.sweep_beside_checkpoints(latest, []).numpy()]


def assert_kept_restore_exactly(directory: str, count: int = 6) -> None:
    stream = uninterrupted(60)
    for name in kept_checkpoints(directory):
        prefix = os.path.join(directory, name)
        read = run_child({"route": "read", "prefix": prefix, "steps": count, "dir": directory})
        start = read["start"]
        assert read["elements"] == stream[start:start + count], name


@pytest.mark.parametrize("incremental", [None, True, False])
def test_max_to_keep_takes_our_files_with_it(tmp_path, incremental):
    directory = str(tmp_path / "model")
    config = {"dir": directory, "steps": 30, "save_every": 5, "route": "export",
              "max_to_keep": 2}
    if incremental is not None:
        config["incremental"] = incremental
    run_child(config)  # 6 saves: 5, 10, ..., 30
    assert kept_checkpoints(directory) == ["model.ckpt-25", "model.ckpt-30"]
    # Each save swept what the Saver deleted at the save before, and the exit what it
    # deleted after the last save (ckpt-20): only the kept ones' files and the shards they
    # refer to are left; nothing is left to sweep.
    foreign = assert_only_kept(directory, last_deleted=None)
    assert not any(n.endswith(".index") for (tf_name, _), files in our_groups(directory).items()
                   if tf_name == "model.ckpt-20" for n in files)
    assert sweep_now(directory) == []
    if incremental is False:
        assert not foreign
    else:
        # The shuffle buffer still holds elements saved at step 5: kept incremental
        # checkpoints read shards of TF checkpoints that are gone; those shards stay.
        assert any(not f.startswith(("model.ckpt-25.", "model.ckpt-30.")) for f in foreign)
    assert_kept_restore_exactly(directory)


def test_meta_graph_saver_takes_our_files_with_it_and_a_killed_save_is_swept(tmp_path):
    directory = str(tmp_path / "model")
    run_child({"dir": directory, "steps": 10, "save_every": 5, "route": "export",
               "max_to_keep": 2})
    # A fresh process whose Saver comes from the meta graph, killed in its save of step 20
    # after our files were written, before TF's index.
    run_child({"dir": directory, "steps": 30, "save_every": 5, "route": "import",
               "kill_in_save_at": 20}, killed=True)
    assert ("model.ckpt-20" in {n for n, _ in our_groups(directory)}
            and not os.path.exists(os.path.join(directory, "model.ckpt-20.index")))
    killed = set(our_groups(directory))
    run_child({"dir": directory, "steps": 35, "save_every": 5, "route": "import"})
    assert kept_checkpoints(directory) == ["model.ckpt-30", "model.ckpt-35"]
    groups = set(our_groups(directory))
    left_of_killed = {g for g in killed & groups if g[0] == "model.ckpt-20"}
    # The killed save's index is gone; only shards a kept save refers to may stay.
    for group in left_of_killed:
        assert not any(n.endswith(".index") for n in our_groups(directory)[group])
    # ckpt-25, deleted at the last save, went at the exit.
    assert_only_kept(directory, last_deleted=None)
    assert sweep_now(directory) == []
    assert_kept_restore_exactly(directory)


@pytest.mark.parametrize("route", ["session", pytest.param("estimator", marks=pytest.mark.skipif(
    not HAS_ESTIMATOR, reason="no tf.estimator in this TensorFlow"))])
def test_killed_and_restarted_job_leaves_no_orphans(tmp_path, route):
    directory = str(tmp_path / "model")
    common = {"dir": directory, "save_every": 5, "route": route, "max_to_keep": 2}
    run_child({**common, "steps": 40, "kill_at": 23}, killed=True)
    # SIGKILLed: no sweep at exit, so ours of ckpt-10 (deleted at the save of 20) are left,
    # for the restarted job's first save to remove.
    assert "model.ckpt-10" in {n for n, _ in our_groups(directory)}
    resumed = run_child({**common, "steps": 42})
    assert resumed["start"] == 20
    assert resumed["elements"] == uninterrupted(42)[20:]
    assert len(kept_checkpoints(directory)) == 2
    # No files of ours of TF checkpoints that are gone (the one deleted at the last save
    # went at exit), nor of the killed job's save of step 20, which the restart's re-save
    # of step 20 (a new token) replaced.
    groups = our_groups(directory)
    named = named_groups(directory, tf_checkpoints_on_disk(directory))
    orphans = {tf_name for g, files in groups.items() if g not in named
               for tf_name in [g[0]] if any(f.endswith(".index") for f in files)}
    assert not orphans, sorted(groups)
    assert sweep_now(directory) == []
    assert_only_kept(directory, last_deleted=None)
    assert not any(f.endswith(".index") for g, files in our_groups(directory).items()
                   if g not in named for f in files)
    if route == "session":  # (Estimator's graph has no collections to read it back with)
        assert_kept_restore_exactly(directory)
