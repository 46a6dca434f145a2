"""Restoring into a pipeline of another structure: a clear error, never a silent misrestore."""

from __future__ import annotations

import itertools
import pathlib

import pytest
import tensorflow as tf
from tensorflow.python.data.util import structure

import tfdata_checkpoint as tc
from tests.support import index_codec
from tests.support.hook_sessions import shuffled_dataset, train
from tests.support.pipelines import PIPELINES
from tests.support.streams import assert_elements_equal, take
from tfdata_checkpoint._src.iterator_state import describe_checkpoint


def _fits(saved_as, restored_into):
    """Whether the element specs agree as the iterators see them: one dtype and
    shape per flat component (a ragged or sparse element is a variant)."""
    saved = structure.get_flat_tensor_specs(PIPELINES[saved_as]().element_spec)
    restored = structure.get_flat_tensor_specs(PIPELINES[restored_into]().element_spec)
    return len(saved) == len(restored) and all(
        a.dtype == b.dtype and a.shape.is_compatible_with(b.shape)
        for a, b in zip(saved, restored))


def test_every_other_pipeline_structure_is_rejected(tmp_path):
    """All ordered pairs of the test pipelines (156): restoring one's checkpoint
    into another raises a tf.errors error. Where the element specs do not
    fit, the restore itself raises InvalidArgumentError naming the checkpoint,
    before the iterator is touched; otherwise TensorFlow's own Restore (or the
    first element) rejects it. on_corrupt="fallback" does not treat this as
    damage (test_corruption.py::test_a_pipeline_that_does_not_fit_is_not_damage)."""
    prefixes = {}
    for name, make in PIPELINES.items():
        iterator = iter(make())
        next(iterator)
        next(iterator)
        prefixes[name] = tc.save_iterator(iterator, str(tmp_path / name))
    outcomes: dict[str, int] = {}
    silent, late = [], []
    for saved_as, restored_into in itertools.permutations(PIPELINES, 2):
        same_spec = _fits(saved_as, restored_into)
        iterator = iter(PIPELINES[restored_into]())
        try:
            tc.restore_iterator(iterator, prefixes[saved_as])
        except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as error:
            kind = f"{type(error).__name__} at restore"
            if not same_spec and (
                not isinstance(error, tf.errors.InvalidArgumentError)
                or prefixes[saved_as] not in error.message
            ):
                late.append((saved_as, restored_into, error.message))
        else:
            if not same_spec:
                late.append((saved_as, restored_into, "restored"))
            try:
                next(iterator)
            except (tf.errors.NotFoundError, tf.errors.InvalidArgumentError) as error:
                kind = f"{type(error).__name__} at first element"
            else:
                silent.append((saved_as, restored_into))
                continue
        outcomes[kind] = outcomes.get(kind, 0) + 1
    print(f"structural mismatches: {outcomes}")
    assert not silent, silent
    assert not late, late
    assert sum(outcomes.values()) == len(PIPELINES) * (len(PIPELINES) - 1)


def _int64s():
    return tf.data.Dataset.range(100).map(lambda x: x * 2).shuffle(8, seed=1).prefetch(2)


def _strings():
    return tf.data.Dataset.range(100).map(tf.strings.as_string).shuffle(8, seed=1).prefetch(2)


def _vectors():
    return tf.data.Dataset.range(100).map(lambda x: tf.fill([3], x)).shuffle(8, seed=1).prefetch(2)


@pytest.mark.parametrize(
    "saved_as, restored_into, saved_spec, restored_spec",
    [
        (_int64s, _strings, r"\(int64 \[\]\)", r"\(string \[\]\)"),
        (_strings, _int64s, r"\(string \[\]\)", r"\(int64 \[\]\)"),
        (_int64s, _vectors, r"\(int64 \[\]\)", r"\(int64 \[3\]\)"),
    ],
)
def test_same_structure_other_elements_is_rejected_before_restore(
        tmp_path, saved_as, restored_into, saved_spec, restored_spec):
    """The same map-shuffle-prefetch chain over other element types has the same
    state names and keys: TensorFlow's Restore accepts it, and the buffered
    elements of the wrong type come out later (or, with empty buffers, a
    fresh stream does). The recorded element spec rejects it at the restore."""
    iterator = iter(saved_as())
    take(iterator, 5)
    prefix = tc.save_iterator(iterator, str(tmp_path / "ckpt"))
    target = iter(restored_into())
    take(target, 3)
    expected = take(iter(restored_into()), 10)[3:]
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=f"{prefix}.*{saved_spec}.*{restored_spec}"):
        tc.restore_iterator(target, prefix)
    # Rejected before the iterator was touched: it goes on where it was.
    assert_elements_equal(expected, take(target, 7))
    # The describe op, and so `inspect --json`, shows what was recorded.
    described = describe_checkpoint(prefix)
    assert described["format_version"] == "1.1"
    assert described["element_spec"] == [
        {"dtype": saved_as().element_spec.dtype.as_datatype_enum,
         "shape": saved_as().element_spec.shape.as_list()}]


def test_hook_rejects_same_structure_other_elements_in_every_part(tmp_path):
    """The hook's restore of several iterators (RestoreIteratorShards, then
    DeserializeIterator) checks every part's element spec before any iterator
    changes, with on_corrupt="fallback" too: it is not damage."""
    hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=2,
                                          async_save=False)
    train(4, hooks=[hook], make_dataset=shuffled_dataset, num_iterators=2)

    def second_as_floats(index):
        dataset = shuffled_dataset(index)
        return dataset.map(lambda x: tf.cast(x, tf.float32)) if index == 1 else dataset

    for on_corrupt in ("raise", "fallback"):
        hook = tc.CheckpointInputPipelineHook(checkpoint_dir=str(tmp_path), save_steps=2,
                                              on_corrupt=on_corrupt)
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"input\.ckpt-4.*float"):
            train(1, hooks=[hook], make_dataset=second_as_floats, num_iterators=2)


def _as_format_1_0(prefix):
    """Rewrites the index of `prefix` as format 1.0 (no element spec), as an
    earlier release wrote it."""
    path = pathlib.Path(prefix + ".index")
    index = index_codec.decode(path.read_bytes())
    assert index.minor == 1 and index.element_spec is not None
    index.minor, index.spec_section, index.element_spec = 0, False, None
    path.write_bytes(index_codec.encode(index))


def test_format_1_0_checkpoints_still_restore(tmp_path):
    iterator = iter(_int64s())
    take(iterator, 5)
    prefix = tc.save_iterator(iterator, str(tmp_path / "ckpt"))
    expected = take(iterator, 20)
    _as_format_1_0(prefix)
    assert describe_checkpoint(prefix, verify=True)["element_spec"] is None
    restored = iter(_int64s())
    tc.restore_iterator(restored, prefix)
    assert_elements_equal(expected, take(restored, 20))
