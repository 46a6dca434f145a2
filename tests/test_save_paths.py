"""How a save's prefix and directory are spelled: every spelling that saves must restore.

- a prefix that does not name a file (ending in "/", ".", "..") is refused at
  the save, before anything is written;
- a prefix with ".." after a directory that does not exist yet, or after a
  symbolic link, is cleaned by TensorFlow's filesystem before it writes; the
  fsync and the writer lock go to the same files, not to what the kernel would
  resolve;
- `wait_for_pending_saves(directory)` waits for the saves into that directory
  however it is spelled (absolute or relative, "ck" or "./ck" or "ck/");
- a synchronous save after a failed background save into the same directory
  raises that failure (the README: "the next save raises it").
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import tensorflow as tf

import tfdata_checkpoint as tc
from tfdata_checkpoint._src.storage import writer_lock


def _dataset():
    return tf.data.Dataset.range(1000).shuffle(50, seed=11).prefetch(3)


def _next(iterator, n):
    return [int(next(iterator)) for _ in range(n)]


def _saved_iterator():
    iterator = iter(_dataset())
    _next(iterator, 7)
    return iterator


def _assert_restores_like_uninterrupted(prefix, expected):
    fresh = iter(_dataset())
    tc.restore_iterator(fresh, prefix)
    assert _next(fresh, len(expected)) == expected


@pytest.mark.parametrize("ending", ["/", "//", "/.", "/.."])
def test_prefix_that_names_no_file_is_refused_at_save(tmp_path, ending):
    directory = tmp_path / "ckpts"
    directory.mkdir()
    prefix = str(directory) + ending
    iterator = _saved_iterator()
    with pytest.raises(ValueError, match=re.escape(repr(prefix))):
        tc.save_iterator(iterator, prefix)
    # The raw ops, for graphs and tf.functions, refuse it too.
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(prefix)):
        tc.ops.save_iterator(iterator._iterator_resource, prefix)
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(prefix)):
        tc.ops.save_iterator(iterator._iterator_resource, prefix, asynchronous=True)
    state = tf.raw_ops.SerializeIterator(resource_handle=iterator._iterator_resource)
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(prefix)):
        tc.ops.save_iterator_shards(state, prefix)
    tc.wait_for_pending_saves()
    assert os.listdir(directory) == []
    assert sorted(os.listdir(tmp_path)) == ["ckpts"]


def test_prefix_refused_in_graph_mode_when_the_save_runs(tmp_path):
    prefix = str(tmp_path) + "/"
    with tf.Graph().as_default():
        iterator = tf.compat.v1.data.make_one_shot_iterator(_dataset())
        placeholder = tf.compat.v1.placeholder(tf.string, [])
        save = tc.save_iterator(iterator, placeholder)
        with tf.compat.v1.Session() as session, pytest.raises(
            tf.errors.InvalidArgumentError, match=re.escape(prefix)
        ):
            session.run(save, feed_dict={placeholder: prefix})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("asynchronous", [False, True])
def test_dotdot_after_a_directory_that_does_not_exist_yet(tmp_path, asynchronous):
    prefix = f"{tmp_path}/not_yet/../ckpts/input.ckpt-7"
    iterator = _saved_iterator()
    tc.save_iterator(iterator, prefix, fsync=True, asynchronous=asynchronous)
    tc.wait_for_pending_saves()
    expected = _next(iterator, 30)
    # TensorFlow's filesystem cleans the path lexically: the files are here.
    assert (tmp_path / "ckpts" / "input.ckpt-7.index").is_file()
    assert not (tmp_path / "not_yet").exists()
    _assert_restores_like_uninterrupted(prefix, expected)
    _assert_restores_like_uninterrupted(f"{tmp_path}/ckpts/input.ckpt-7", expected)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_dotdot_after_a_symbolic_link(tmp_path, asynchronous):
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere" / "deep", tmp_path / "link")
    # The kernel resolves link/.. to elsewhere/, TensorFlow to tmp_path.
    prefix = f"{tmp_path}/link/../ckpts/input.ckpt-7"
    iterator = _saved_iterator()
    tc.save_iterator(iterator, prefix, fsync=True, asynchronous=asynchronous)
    tc.wait_for_pending_saves()
    expected = _next(iterator, 30)
    assert (tmp_path / "ckpts" / "input.ckpt-7.index").is_file()
    assert not (tmp_path / "elsewhere" / "ckpts").exists()
    _assert_restores_like_uninterrupted(prefix, expected)


def test_manager_through_dotdot_after_a_symbolic_link(tmp_path):
    (tmp_path / "elsewhere" / "deep").mkdir(parents=True)
    os.symlink(tmp_path / "elsewhere" / "deep", tmp_path / "link")
    directory = f"{tmp_path}/link/../ckpts"
    iterator = _saved_iterator()
    manager = tc.IteratorCheckpointManager(iterator, directory)
    manager.save(7)
    manager.wait()
    expected = _next(iterator, 30)
    # The writer lock lies beside the checkpoints, where a second writer spelling
    # the directory plainly looks for it.
    names = os.listdir(tmp_path / "ckpts")
    assert {"checkpoint_input", "input.ckpt-7.index", "input.ckpt.lock"} <= set(names), names
    assert writer_lock.lock_path(directory, "input.ckpt") == str(
        tmp_path / "ckpts" / "input.ckpt.lock"
    )
    assert not (tmp_path / "elsewhere" / "ckpts").exists()
    manager.close()
    fresh = iter(_dataset())
    tc.IteratorCheckpointManager(fresh, str(tmp_path / "ckpts")).restore_or_initialize()
    assert _next(fresh, 30) == expected


@pytest.mark.parametrize(
    "save_in, wait_for",
    [
        ("ck", "{tmp}/ck"),
        ("{tmp}/ck", "ck"),
        ("ck", "./ck"),
        ("./ck", "ck"),
        ("ck", "ck/"),
        ("{tmp}/ck", "file://{tmp}/ck"),
        ("{tmp}/x/../ck", "{tmp}/ck"),
    ],
)
def test_wait_for_pending_saves_whatever_the_spelling(tmp_path, monkeypatch, save_in, wait_for):
    monkeypatch.chdir(tmp_path)
    tc.wait_for_pending_saves()  # nothing of other tests left to report
    save_in, wait_for = (s.format(tmp=tmp_path) for s in (save_in, wait_for))
    prefix = f"{save_in}/input.ckpt-7"
    iterator = _saved_iterator()
    tc.save_iterator(iterator, prefix, asynchronous=True)
    # It waits for this save (and for it only), so it commits on return.
    assert tc.wait_for_pending_saves(wait_for) == [prefix]
    assert (tmp_path / "ck" / "input.ckpt-7.index").is_file()
    assert tc.wait_for_pending_saves() == []


def test_wait_for_pending_saves_raises_the_failure_whatever_the_spelling(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tc.wait_for_pending_saves()
    (tmp_path / "ck").mkdir()
    # An index path that is a directory: the commit (the rename) fails.
    (tmp_path / "ck" / "input.ckpt-7.index").mkdir()
    tc.save_iterator(_saved_iterator(), "./ck/input.ckpt-7", asynchronous=True)
    with pytest.raises(tf.errors.OpError, match="Background save of ./ck/input.ckpt-7 failed"):
        tc.wait_for_pending_saves(str(tmp_path / "ck"))
    assert tc.wait_for_pending_saves() == []


def test_synchronous_save_after_a_failed_background_save_raises_it(tmp_path):
    directory = tmp_path / "ck"
    directory.mkdir()
    (directory / "input.ckpt-7.index").mkdir()
    iterator = _saved_iterator()
    tc.save_iterator(iterator, f"{directory}/input.ckpt-7", asynchronous=True)
    # The next save into the directory waits for the background one and raises
    # its failure instead of saving.
    with pytest.raises(tf.errors.OpError, match=re.escape(f"Background save of {directory}/input.ckpt-7")):
        tc.save_iterator(iterator, f"{directory}/input.ckpt-8")
    assert not (directory / "input.ckpt-8.index").exists()
    # Reported once: the failure is not raised again.
    assert tc.wait_for_pending_saves(str(directory)) == []
    tc.save_iterator(iterator, f"{directory}/input.ckpt-8")
    expected = _next(iterator, 20)
    _assert_restores_like_uninterrupted(f"{directory}/input.ckpt-8", expected)
    # A successful background save is not lost by a synchronous one either.
    tc.save_iterator(iterator, f"{directory}/input.ckpt-9", asynchronous=True)
    tc.save_iterator(iterator, f"{directory}/input.ckpt-10")
    assert tc.wait_for_pending_saves(str(directory)) == [f"{directory}/input.ckpt-9"]
    assert np.all([(directory / f"input.ckpt-{s}.index").is_file() for s in (9, 10)])
