"""Migration: a directory of TF-format input checkpoints (TF's own hook) is resumed from.

TF's `CheckpointInputPipelineHook` (TF <= 2.15) wrote `input.ckpt-<step>` tensor
bundles and `checkpoint_input`; our hook restores the stream from them on its
first start, then saves in its own format and leaves TF's files alone.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tests.support.hook_sessions import shuffled_dataset, train
from tfdata_checkpoint._src.layout import join_path
from tfdata_checkpoint._src.retention import CheckpointRetention
from tfdata_checkpoint._src.storage.index_format import IndexFormat, index_format
from tfdata_checkpoint._src.tf_bundle_checkpoints import match_keys

HAS_TF_HOOK = hasattr(tf.data.experimental, "CheckpointInputPipelineHook")
HAS_ESTIMATOR = hasattr(tf, "estimator") and hasattr(tf.estimator, "Estimator")
LATEST = "checkpoint_input"


@pytest.fixture(scope="module")
def uninterrupted():
    return train(30)


@pytest.fixture(params=["local", "ram"])
def directory(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path)
        return
    path = f"ram://migration-{os.getpid()}-{id(request)}"
    tf.io.gfile.makedirs(path)
    yield path
    tf.io.gfile.rmtree(path)


def index_formats(directory, basename="input.ckpt"):
    """{step: format} of every `<basename>-<step>.index` in the directory."""
    directory = os.fspath(directory)
    found = {}
    for name in tf.io.gfile.listdir(directory):
        if name.startswith(basename + "-") and name.endswith(".index"):
            step = int(name[len(basename) + 1 : -len(".index")])
            found[step] = index_format(join_path(directory, name))
    return found


def write_with_saver(directory, consumed_at_saves, num_iterators=1):
    """TF-format input checkpoints as TF's hook writes them: a sharded Saver
    over each iterator's saveable (key `<iterator tensor name>_STATE`)."""
    with tf.Graph().as_default():
        iterators = [
            tf.compat.v1.data.make_one_shot_iterator(shuffled_dataset(i))
            for i in range(num_iterators)
        ]
        next_elements = [iterator.get_next() for iterator in iterators]
        saveables = [tf.data.experimental.make_saveable_from_iterator(i) for i in iterators]
        saver = tf.compat.v1.train.Saver(saveables, sharded=True)
        seen = []
        with tf.compat.v1.Session() as session:
            for consumed in consumed_at_saves:
                while len(seen) < consumed:
                    values = session.run(next_elements)
                    seen.append(values[0] if num_iterators == 1 else tuple(values))
                saver.save(
                    session,
                    join_path(directory, "input.ckpt"),
                    global_step=consumed,
                    latest_filename=LATEST,
                    write_meta_graph=False,
                )
        return seen


@pytest.mark.parametrize("num_iterators", [1, 2])
def test_resumes_from_a_saver_written_bundle_then_saves_in_our_format(
    directory, num_iterators, caplog
):
    expected = train(12, num_iterators=num_iterators)
    assert write_with_saver(directory, [3, 5], num_iterators) == expected[:5]
    assert index_formats(directory) == {3: IndexFormat.TF_BUNDLE, 5: IndexFormat.TF_BUNDLE}

    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=2, max_to_keep=1)
    with caplog.at_level(logging.WARNING):
        # No model checkpoint: the newest TF one, of step 5, is restored.
        resumed = train(4, hooks=[hook], num_iterators=num_iterators)
    assert resumed == expected[5:9]
    assert "Migrating" in caplog.text and "input.ckpt-5" in caplog.text

    # Our own checkpoints now (the global step began at 0 again: steps 2 and
    # 4, of which max_to_keep=1 keeps 4), and TF's are untouched.
    assert index_formats(directory) == {
        3: IndexFormat.TF_BUNDLE,
        4: IndexFormat.OURS,
        5: IndexFormat.TF_BUNDLE,
    }
    state = tf.train.get_checkpoint_state(directory, latest_filename=LATEST)
    assert [p.rsplit("/", 1)[-1] for p in state.all_model_checkpoint_paths] == ["input.ckpt-4"]

    # The next start resumes from ours, not from TF's again.
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=2)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert train(3, hooks=[hook], num_iterators=num_iterators) == expected[9:12]
    assert "Migrating" not in caplog.text


def test_retention_never_lists_or_deletes_tf_checkpoints(directory):
    write_with_saver(directory, [1, 2, 3])
    retention = CheckpointRetention(directory, "input.ckpt", latest_filename=LATEST, max_to_keep=1)
    # The state file lists three TF checkpoints: none of them is ours.
    assert retention.committed_steps() == []
    assert retention.latest() is None
    iterator = iter(shuffled_dataset())
    for step in (1, 4):
        tc.save_iterator(iterator, retention.prefix(step))
        retention.record(step)
    # Ours: only the newest (max_to_keep=1). TF's checkpoints of steps 2 and 3
    # stay whole; step 1's TF index was replaced by our save of the same step,
    # and every file of step 1 went when ours was pruned.
    assert retention.committed_steps() == [4]
    assert index_formats(directory) == {
        2: IndexFormat.TF_BUNDLE,
        3: IndexFormat.TF_BUNDLE,
        4: IndexFormat.OURS,
    }
    for step in (2, 3):
        assert tf.io.gfile.exists(join_path(directory, f"input.ckpt-{step}.data-00000-of-00001"))
    assert not [n for n in tf.io.gfile.listdir(directory) if n.startswith("input.ckpt-1.")]


def test_index_format_is_told_by_content(ram_dir, tmp_path):
    write_with_saver(ram_dir, [1])
    iterator = iter(shuffled_dataset())
    tc.save_iterator(iterator, f"{ram_dir}/ours")
    garbage = tmp_path / "garbage.index"
    garbage.write_bytes(b"not an index at all")
    assert index_format(f"{ram_dir}/input.ckpt-1.index") is IndexFormat.TF_BUNDLE
    assert index_format(f"{ram_dir}/ours.index") is IndexFormat.OURS
    assert index_format(str(garbage)) is IndexFormat.UNKNOWN
    assert index_format(str(tmp_path / "missing.index")) is IndexFormat.MISSING


def test_keys_are_matched_by_iterator_name():
    keys = ["IteratorV2:0_STATE", "IteratorV2_1:0_STATE"]
    assert match_keys(["IteratorV2_1:0", "IteratorV2:0"], keys, "p") == keys[::-1]
    # One iterator, one state: restored whatever the names.
    assert match_keys(["OneShotIterator:0"], keys[:1], "p") == keys[:1]
    with pytest.raises(ValueError, match="p holds the iterator states"):
        match_keys(["A:0", "B:0"], keys, "p")


def _tf_hook_estimator(model_dir, save_steps):
    """What TF's hook reads from an Estimator, for use with MonitoredTrainingSession."""
    config = SimpleNamespace(
        num_worker_replicas=1,
        task_type="worker",
        task_id=0,
        save_checkpoints_steps=save_steps,
        save_checkpoints_secs=None,
    )
    return SimpleNamespace(model_dir=model_dir, _config=config, config=config)


@pytest.mark.skipif(not HAS_TF_HOOK, reason="TF's CheckpointInputPipelineHook exists up to TF 2.15")
def test_resumes_from_tf_hook_at_the_model_step(tmp_path, uninterrupted):
    directory = str(tmp_path)
    # TF's hook saves input every 3 steps, the model every 4: 0, 3, 6, 9, 10 / 0, 4, 8, 10.
    tf_hook = tf.data.experimental.CheckpointInputPipelineHook(_tf_hook_estimator(directory, 3))
    assert train(10, hooks=[tf_hook], model_dir=directory, model_save_steps=4) == uninterrupted[:10]
    assert index_formats(directory) == dict.fromkeys([0, 3, 6, 9, 10], IndexFormat.TF_BUNDLE)
    # As after a crash at step 9: the model's newest checkpoint is of step 8.
    os.remove(tmp_path / "model.ckpt-10.index")
    tf.compat.v1.train.update_checkpoint_state(directory, f"{directory}/model.ckpt-8")
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=directory, save_steps=3)
    # No TF input checkpoint of step 8: the newest before it, of step 6.
    assert train(4, hooks=[hook], model_dir=directory, model_save_steps=4) == uninterrupted[6:10]


@pytest.mark.skipif(not HAS_ESTIMATOR, reason="tf.estimator exists up to TF 2.15 only")
def test_estimator_moves_from_tf_hook_to_ours(tmp_path, uninterrupted):
    ids_collection = "migration_ids"

    def model_fn(features, labels, mode):
        del labels
        tf.compat.v1.add_to_collection(ids_collection, features)
        global_step = tf.compat.v1.train.get_or_create_global_step()
        return tf.estimator.EstimatorSpec(
            mode, loss=tf.constant(0.0), train_op=global_step.assign_add(1)
        )

    class Recorder(tf.compat.v1.train.SessionRunHook):
        def __init__(self):
            self.ids = []

        def before_run(self, run_context):
            ids = tf.compat.v1.get_collection(ids_collection)[0]
            return tf.compat.v1.train.SessionRunArgs(ids)

        def after_run(self, run_context, run_values):
            self.ids.append(run_values.results)

    estimator = tf.estimator.Estimator(
        model_fn,
        model_dir=str(tmp_path),
        config=tf.estimator.RunConfig(save_checkpoints_steps=3, log_step_count_steps=None),
    )
    recorder = Recorder()
    estimator.train(
        shuffled_dataset,
        steps=7,
        hooks=[tf.data.experimental.CheckpointInputPipelineHook(estimator), recorder],
    )
    assert index_formats(tmp_path) == dict.fromkeys([0, 3, 6, 7], IndexFormat.TF_BUNDLE)
    # Estimator's iterator: its state is keyed by the iterator's tensor name.
    reader = tf.compat.v1.train.NewCheckpointReader(str(tmp_path / "input.ckpt-7"))
    assert [k for k in reader.get_variable_to_dtype_map() if k.endswith("_STATE")] == [
        "IteratorV2:0_STATE"
    ]

    for _ in range(2):
        estimator.train(
            shuffled_dataset,
            steps=4,
            hooks=[tc.CheckpointInputPipelineHook(estimator, max_to_keep=2), recorder],
        )
    # TF's hook to step 7, ours from its checkpoint of step 7 on: one stream.
    assert [int(i) for i in recorder.ids] == uninterrupted[:15]
    formats = index_formats(tmp_path)
    assert {s: f for s, f in formats.items() if s <= 7} == dict.fromkeys(
        [0, 3, 6, 7], IndexFormat.TF_BUNDLE
    )
    # Ours every 3 steps from 7 and at each end: 10, 11, 14, 15; 2 kept.
    assert {s: f for s, f in formats.items() if s > 7} == dict.fromkeys(
        [14, 15], IndexFormat.OURS
    )
    assert tf.train.latest_checkpoint(str(tmp_path), latest_filename=LATEST).endswith(
        "input.ckpt-15"
    )


def test_cli_skips_tf_bundles_in_a_directory(tmp_path):
    directory = str(tmp_path)
    write_with_saver(directory, [1])
    tc.save_iterator(iter(shuffled_dataset()), join_path(directory, "input.ckpt-2"))
    out = subprocess.run(
        [sys.executable, "-m", "tfdata_checkpoint.tools.cli", "verify", directory],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 good, 0 damaged" in out.stdout
    assert "skipping 1 TensorFlow tensor bundle" in out.stderr
