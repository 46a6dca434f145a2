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
