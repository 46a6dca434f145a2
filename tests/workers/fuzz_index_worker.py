"""Feeds hostile index files through the ops; run by test_fuzz_index.py (not a test module).

Usage: python -m tests.workers.fuzz_index_worker WORK_DIR EXAMPLES_PER_STRATEGY SEED

Four hypothesis strategies, each with a checksum that holds (so the parser's
structural checks are what is exercised, not only the CRC):
- random bytes, with or without the magic;
- structured mutations of a real index (versions, counts, shard names and
  sizes, dtypes, encodings, ranks and shapes, tensor placement, the element
  spec, trailing bytes), re-encoded;
- byte-level mutations of a real index (overwrites, insertions, deletions);
- the structured mutations, and mutations of the referenced streams and of
  each tensor's stream, of a real incremental index (format 2.0) whose
  referenced shards are real.

Every case is written as the index of a checkpoint whose shards are real, then
run through DescribeIteratorShards (with and without verify),
RestoreIteratorShards and CheckIteratorElementSpec (against the iterator that
was saved). Each call must return or raise a tf.errors.OpError.

What a successful RestoreIteratorShards returns is not handed on to
TensorFlow's DeserializeIterator here: an index crafted with consistent
checksums can describe any state at all (another dtype, other metadata), and
TensorFlow's iterator restore code, like its own checkpoint restore, aborts on
some such states (e.g. a CHECK on a tensor's dtype). Checksums catch damage,
not forgery; see README, "What is and is not guaranteed".
Before each case its bytes go to WORK_DIR/last_case.bin, so that a crash of
the process (which would take pytest down if run in it) leaves the input
that caused it. Prints the outcome counts as JSON on the last line.
"""

from __future__ import annotations

import collections
import copy
import json
import os
import sys

import tensorflow as tf
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import tfdata_checkpoint as tc
from tests.support import index_codec

WORK, EXAMPLES, SEED = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
PREFIX = os.path.join(WORK, "ckpt")
outcomes: collections.Counter = collections.Counter()


def dataset():
    # Raw, string-list and tensor-proto (ragged variant) encodings all occur.
    rt = tf.ragged.constant([[i] * (i % 3) for i in range(40)], dtype=tf.int64)
    strings = tf.data.Dataset.range(40).map(lambda x: tf.strings.as_string(x))
    return tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(rt), strings)).shuffle(
        8, seed=1).batch(2).prefetch(2)


def big_elements():
    # Elements large enough (1600 bytes) to be referenced by an incremental save.
    return tf.data.Dataset.range(100).map(lambda x: tf.fill([200], x)).shuffle(6, seed=2)


iterator = iter(dataset())
next(iterator)
tc.save_iterator(iterator, PREFIX, num_shards=3)
with open(PREFIX + ".index", "rb") as f:
    GOOD = f.read()
REAL = index_codec.decode(GOOD)
RESOURCE = iterator._iterator_resource

# An incremental checkpoint: INCREMENTAL references the shards of its base (2 shards).
INCREMENTAL = os.path.join(WORK, "incremental")
incremental_iterator = iter(big_elements())
next(incremental_iterator)
tc.ops.save_iterator(incremental_iterator._iterator_resource, os.path.join(WORK, "base"),
                     num_shards=2, incremental_key=WORK)
next(incremental_iterator)
tc.ops.save_iterator(incremental_iterator._iterator_resource, INCREMENTAL, num_shards=2,
                     incremental_key=WORK)
with open(INCREMENTAL + ".index", "rb") as f:
    INCREMENTAL_GOOD = f.read()
INCREMENTAL_REAL = index_codec.decode(INCREMENTAL_GOOD)
assert INCREMENTAL_REAL.major == 2 and INCREMENTAL_REAL.streams, "not an incremental index"
assert index_codec.encode(INCREMENTAL_REAL) == INCREMENTAL_GOOD, "the model disagrees"
INCREMENTAL_RESOURCE = incremental_iterator._iterator_resource


def run_case(data: bytes, prefix: str = PREFIX, resource=RESOURCE) -> None:
    with open(os.path.join(WORK, "last_case.bin"), "wb") as f:
        f.write(data)
    with open(prefix + ".index", "wb") as f:
        f.write(data)
    for verify in (False, True):
        try:
            tc.ops.describe_iterator_shards(prefix, verify=verify)
        except tf.errors.OpError as error:
            outcomes[f"describe(verify={verify}): {type(error).__name__}"] += 1
        else:
            outcomes[f"describe(verify={verify}): ok"] += 1
    try:
        tc.ops.restore_iterator_shards(prefix)
    except tf.errors.OpError as error:
        outcomes[f"restore: {type(error).__name__}"] += 1
    else:
        outcomes["restore: ok"] += 1
    try:
        tc.ops.check_iterator_element_spec(resource, prefix)
    except tf.errors.OpError as error:
        outcomes[f"check: {type(error).__name__}"] += 1
    else:
        outcomes["check: ok"] += 1


SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
U32 = st.integers(0, 2**32 - 1)
U64 = st.integers(0, 2**64 - 1)


@seed(SEED)
@SETTINGS
@given(st.booleans(), st.binary(max_size=600))
def random_bytes(with_magic, body):
    run_case(index_codec.with_crc((index_codec.MAGIC if with_magic else b"") + body))


def _mutation():
    small = st.integers(0, 64)
    any_int = st.one_of(small, U32, U64, st.integers(-(2**63), 2**63 - 1))
    return st.one_of(
        st.tuples(st.just("major"), st.one_of(st.just(1), U32)),
        st.tuples(st.just("minor"), U32),
        st.tuples(st.just("total_bytes"), st.one_of(small, U64)),
        st.tuples(st.just("count"), st.sampled_from(["shards", "type_names", "entries"]),
                  st.one_of(small, U32, U64)),
        st.tuples(st.just("shard_name"), small, st.one_of(
            st.binary(max_size=40), st.sampled_from([b"", b".", b"..", b"a/b", b"/etc/passwd"]))),
        st.tuples(st.just("shard_size"), small, st.one_of(small, U64)),
        st.tuples(st.just("type_name"), small, st.binary(max_size=40)),
        st.tuples(st.just("type_name_id"), small, st.one_of(small, U32)),
        st.tuples(st.just("metadata"), small, st.binary(max_size=40)),
        st.tuples(st.just("dtype"), small, small, st.one_of(small, st.integers(100, 130), U32)),
        st.tuples(st.just("encoding"), small, small, st.integers(0, 255)),
        st.tuples(st.just("shape"), small, small, st.lists(any_int, max_size=300)),
        st.tuples(st.just("placement"), small, small,
                  st.sampled_from(["shard", "offset", "length"]), any_int),
        st.tuples(st.just("drop_entry"), small),
        st.tuples(st.just("duplicate_tensor"), small, small),
        st.tuples(st.just("trailer"), st.binary(min_size=1, max_size=20)),
        st.tuples(st.just("spec_flag"), st.integers(0, 255)),
        st.tuples(st.just("count"), st.just("components"), st.one_of(small, U32)),
        st.tuples(st.just("component_dtype"), small, st.one_of(small, U32)),
        st.tuples(st.just("component_rank"), small,
                  st.one_of(st.integers(-3, 260), st.integers(-(2**31), 2**31 - 1))),
        st.tuples(st.just("component_dims"), small, st.lists(any_int, max_size=300)),
        st.tuples(st.just("no_spec_section")),
    )


def _apply(index, mutation, counts):
    kind, *args = mutation

    def pick(items, i):
        return items[i % len(items)] if items else None

    if kind in ("major", "minor", "total_bytes"):
        setattr(index, kind, args[0])
    elif kind == "count":
        counts[args[0]] = args[1]
    elif kind in ("shard_name", "shard_size") and index.shards:
        i = args[0] % len(index.shards)
        name, size, crc = index.shards[i]
        index.shards[i] = (args[1], size, crc) if kind == "shard_name" else (name, args[1], crc)
    elif kind == "type_name" and index.type_names:
        index.type_names[args[0] % len(index.type_names)] = args[1]
    elif kind in ("type_name_id", "metadata") and index.entries:
        entry = pick(index.entries, args[0])
        if kind == "type_name_id":
            entry.type_name_id = args[1]
        else:
            entry.metadata = args[1]
    elif kind in ("dtype", "encoding", "shape", "placement"):
        entry = pick(index.entries, args[0])
        tensor = pick(entry.tensors, args[1]) if entry else None
        if tensor is None:
            return
        if kind == "dtype":
            tensor.dtype = args[2]
        elif kind == "encoding":
            tensor.encoding = args[2]
        elif kind == "shape":
            tensor.shape = args[2][:255]
        else:
            setattr(tensor, args[2], args[3])
    elif kind == "drop_entry" and index.entries:
        del index.entries[args[0] % len(index.entries)]
    elif kind == "duplicate_tensor":
        entry = pick(index.entries, args[0])
        tensor = pick(entry.tensors, args[1]) if entry else None
        if tensor is not None:
            entry.tensors.append(copy.copy(tensor))
    elif kind == "trailer":
        index.trailer = args[0]
    elif kind == "spec_flag":
        index.spec_flag = args[0]
    elif kind == "no_spec_section":
        index.spec_section = False
    elif kind.startswith("component_") and index.element_spec:
        component = pick(index.element_spec, args[0])
        if kind == "component_dtype":
            component.dtype = args[1]
        elif kind == "component_rank":
            component.rank = args[1]
        else:
            component.dims = [_clamp(d, 64, signed=True) for d in args[1][:255]]


def _stream_mutation():
    small = st.integers(0, 64)
    any_int = st.one_of(small, U32, U64)
    name = st.one_of(st.binary(max_size=60), st.sampled_from(
        [b"", b"a/b", b"base.data-0000000000000000-00000-of-00001",
         b"incremental.data-0000000000000000-00000-of-00002"]))
    return st.one_of(
        st.tuples(st.just("stream"), small, small, st.one_of(st.integers(0, 3), U32)),
        st.tuples(st.just("stream_shard_name"), small, small, name),
        st.tuples(st.just("stream_shard_size"), small, small, any_int),
        st.tuples(st.just("count"), st.just("streams"), st.one_of(small, U32)),
        st.tuples(st.just("drop_stream"), small),
        st.tuples(st.just("duplicate_stream"), small),
        st.tuples(st.just("own_stream_name"), small),
    )


def _apply_stream(index, mutation, counts):
    kind, *args = mutation
    if kind == "count":
        counts[args[0]] = args[1]
    elif kind == "stream" and index.entries:
        entry = index.entries[args[0] % len(index.entries)]
        if entry.tensors:
            entry.tensors[args[1] % len(entry.tensors)].stream = args[2]
    elif kind.startswith("stream_shard") and index.streams:
        stream = index.streams[args[0] % len(index.streams)]
        if stream:
            i = args[1] % len(stream)
            name, size = stream[i]
            stream[i] = (args[2], size) if kind == "stream_shard_name" else (name, args[2])
    elif kind == "drop_stream" and index.streams:
        del index.streams[args[0] % len(index.streams)]
    elif kind == "duplicate_stream" and index.streams:
        index.streams.append(list(index.streams[args[0] % len(index.streams)]))
    elif kind == "own_stream_name" and index.streams and index.shards:
        # A referenced stream that names the own shards.
        index.streams[args[0] % len(index.streams)] = [(n, size) for n, size, _ in index.shards]


def _clamp(value, bits, signed=False):
    if signed:
        return max(-(2 ** (bits - 1)), min(2 ** (bits - 1) - 1, value))
    return value % (2**bits)


def _clamp_fields(index, *, streams: bool = False) -> None:
    """Brings mutated numbers back into the widths the encoder writes them in."""
    index.major, index.minor = _clamp(index.major, 32), _clamp(index.minor, 32)
    index.total_bytes = _clamp(index.total_bytes, 64)
    for entry in index.entries:
        entry.type_name_id = _clamp(entry.type_name_id, 32)
        for tensor in entry.tensors:
            tensor.shape = [_clamp(d, 64, signed=True) for d in tensor.shape]
            if streams:
                tensor.stream = _clamp(tensor.stream, 32)


@seed(SEED + 1)
@SETTINGS
@given(st.lists(_mutation(), min_size=1, max_size=4))
def structured(mutations):
    index = copy.deepcopy(REAL)
    counts: dict = {}
    for mutation in mutations:
        _apply(index, mutation, counts)
    _clamp_fields(index)
    run_case(index_codec.encode(index, counts=counts))


@seed(SEED + 3)
@SETTINGS
@given(st.lists(st.one_of(_mutation(), _stream_mutation()), min_size=1, max_size=4))
def structured_incremental(mutations):
    index = copy.deepcopy(INCREMENTAL_REAL)
    counts: dict = {}
    for mutation in mutations:
        if mutation[0] in ("stream", "drop_stream", "duplicate_stream", "own_stream_name") or (
                mutation[0].startswith("stream_shard") or mutation[1:2] == ("streams",)):
            _apply_stream(index, mutation, counts)
        else:
            _apply(index, mutation, counts)
    _clamp_fields(index, streams=True)
    run_case(index_codec.encode(index, counts=counts), INCREMENTAL, INCREMENTAL_RESOURCE)


@seed(SEED + 2)
@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(["set", "insert", "delete"]),
                          st.integers(0, len(GOOD) - 5), st.integers(0, 255)),
                min_size=1, max_size=6))
def byte_mutations(edits):
    data = bytearray(GOOD[:-4])
    for op, position, value in edits:
        position = min(position, len(data) - 1)
        if op == "set":
            data[position] = value
        elif op == "insert":
            data.insert(position, value)
        elif len(data) > 8:
            del data[position]
    run_case(index_codec.with_crc(bytes(data)))


if __name__ == "__main__":
    for strategy in (random_bytes, structured, byte_mutations, structured_incremental):
        strategy()
    outcomes["cases"] = sum(v for k, v in outcomes.items() if k.startswith("describe(verify=False)"))
    print(json.dumps(dict(outcomes)))
