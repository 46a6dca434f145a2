"""Property: for random pipelines, positions and shard counts, restore resumes exactly."""

from __future__ import annotations

import tempfile

import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfdata_checkpoint as tc
from tests.support.streams import assert_elements_equal, take

_STAGES = {
    "map": lambda ds, k: ds.map(lambda x: x * (k + 2)),
    "shuffle": lambda ds, k: ds.shuffle(k + 1, seed=k),
    "batch_unbatch": lambda ds, k: ds.batch(k + 1).unbatch(),
    "prefetch": lambda ds, k: ds.prefetch(k + 1),
    "filter": lambda ds, k: ds.filter(lambda x: x % (k + 2) != 0),
    "repeat": lambda ds, k: ds.repeat(2),
    "interleave": lambda ds, k: ds.interleave(
        lambda x: tf.data.Dataset.from_tensors(x).repeat(2), cycle_length=k % 3 + 1),
    "strings": lambda ds, k: ds.map(lambda x: tf.strings.to_number(
        tf.strings.as_string(x), out_type=tf.int64)),
}

pipeline = st.lists(
    st.tuples(st.sampled_from(sorted(_STAGES)), st.integers(0, 20)), min_size=1, max_size=5
)


def _build(stages):
    ds = tf.data.Dataset.range(150)
    for name, k in stages:
        ds = _STAGES[name](ds, k)
    return ds


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    stages=pipeline,
    skip=st.integers(0, 60),
    num_shards=st.one_of(st.none(), st.integers(1, 40)),
)
def test_random_pipelines_resume_exactly(stages, skip, num_shards):
    with tempfile.TemporaryDirectory() as tmp:
        prefix = f"{tmp}/ckpt"
        it = iter(_build(stages))
        take(it, skip)
        tc.save_iterator(it, prefix, num_shards=num_shards)
        expected = take(it, 40)
        restored = iter(_build(stages))
        tc.restore_iterator(restored, prefix)
        assert_elements_equal(expected, take(restored, 40))
