// Registration of the tfdata-checkpoint ops. Kernels live in cc/kernels/.
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tfdata_checkpoint {

using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

namespace {

enum class Output { kNone, kScalar, kVector };

// The shape function of an op whose inputs have `ranks` and whose one output,
// if any, is a scalar or a vector of unknown length.
tensorflow::OpShapeInferenceFn Shapes(std::vector<int> ranks, Output output) {
  return [ranks = std::move(ranks), output](InferenceContext* c) -> absl::Status {
    ShapeHandle unused;
    for (size_t i = 0; i < ranks.size(); ++i) {
      TF_RETURN_IF_ERROR(c->WithRank(c->input(static_cast<int>(i)), ranks[i], &unused));
    }
    if (output == Output::kScalar) c->set_output(0, c->Scalar());
    if (output == Output::kVector) c->set_output(0, c->Vector(InferenceContext::kUnknownDim));
    return absl::OkStatus();
  };
}

// The arguments SaveIteratorShards and SaveIterator share.
constexpr char kSaveArgsDoc[] = R"doc(prefix: the checkpoint prefix; files are "<prefix>.index" and
  "<prefix>.data-*". The checkpoint exists once "<prefix>.index" does.
saved_prefix: `prefix`, once committed (or, if asynchronous, once captured).
num_shards: number of shard files; 0 chooses from the size and the cores.
fsync: sync shards, index and directory before the save counts as done.
asynchronous: return once the state is captured; the files are written in the
  background. WaitForIteratorShards (or the next save into the same
  directory) waits for it and raises its error.
incremental_key: empty (the default): a full save. A key: an incremental save,
  which may reference the tensors of the last checkpoint committed with the
  same key in this process (in the same directory, at another prefix)
  instead of writing them again, and then becomes the key's base itself.
  The process holds a reference to every tensor of that base until the next
  save with the key commits or ReleaseIncrementalBase(key), so consumed
  elements stay in memory until then. The save is written in full (format
  1.1) when there is nothing to reference or a bound of the chain would be
  passed (docs/FORMAT.md); to start a new chain, release the key first.
)doc";

}  // namespace

REGISTER_OP("SaveIteratorShards")
    .Input("state: variant")
    .Input("prefix: string")
    .Output("saved_prefix: string")
    .Attr("num_shards: int = 0")
    .Attr("fsync: bool = true")
    .Attr("asynchronous: bool = false")
    .Attr("incremental_key: string = ''")
    .SetIsStateful()
    .SetShapeFn(Shapes({1, 0}, Output::kScalar))
    .Doc(absl::StrCat(R"doc(
Writes the state of a tf.data iterator as a sharded checkpoint.

state: the 1-D variant tensor that SerializeIterator returns.
)doc",
                      kSaveArgsDoc));

REGISTER_OP("SaveIterator")
    .Input("iterator: resource")
    .Input("prefix: string")
    .Output("saved_prefix: string")
    .Attr("external_state_policy: int = 2")
    .Attr("num_shards: int = 0")
    .Attr("fsync: bool = true")
    .Attr("asynchronous: bool = false")
    .Attr("incremental_key: string = ''")
    .SetIsStateful()
    .SetShapeFn(Shapes({0, 0}, Output::kScalar))
    .Doc(absl::StrCat(R"doc(
Saves the state of a tf.data iterator as a sharded checkpoint.

Calls the iterator's own Save with a writer that keeps every buffered tensor
by reference (no SerializeIterator, no copy), then writes the files like
SaveIteratorShards.

iterator: the iterator resource.
external_state_policy: 0 warn, 1 ignore, 2 fail (as SerializeIterator).
)doc",
                      kSaveArgsDoc));

REGISTER_OP("RestoreIterator")
    .Input("iterator: resource")
    .Input("prefix: string")
    .SetIsStateful()
    .SetShapeFn(Shapes({0, 0}, Output::kNone))
    .Doc(R"doc(
Restores a tf.data iterator from a checkpoint written by SaveIterator or
SaveIteratorShards, verifying every checksum before the iterator is touched.
Raises InvalidArgument, also before, if the checkpoint records element dtypes
and shapes that the iterator's do not match.

Calls the iterator's own Restore with a reader over the tensors the shards
were read into (no DeserializeIterator, no variant per entry).
)doc");

REGISTER_OP("CheckIteratorElementSpec")
    .Input("iterator: resource")
    .Input("prefix: string")
    .SetIsStateful()
    .SetShapeFn(Shapes({0, 0}, Output::kNone))
    .Doc(R"doc(
Checks that a checkpoint's state fits an iterator, reading only the index.
The iterator's element dtypes and shapes must match those recorded at the
save (SaveIterator records them; checkpoints without them pass).

Raises InvalidArgument naming both element specs otherwise, NotFound or
DataLoss for a missing or damaged index. RestoreIterator makes the same check
itself; this op is for restoring with RestoreIteratorShards and
DeserializeIterator.
)doc");

REGISTER_OP("WaitForIteratorShards")
    .Input("directory: string")
    .Output("committed: string")
    .SetIsStateful()
    .SetShapeFn(Shapes({0}, Output::kVector))
    .Doc(R"doc(
Waits for the background saves into `directory` ("" waits for all).

committed: the prefixes those saves committed since the last wait.
Raises the error of a background save that failed.
)doc");

REGISTER_OP("ReleaseIncrementalBase")
    .Input("key: string")
    .SetIsStateful()
    .SetShapeFn(Shapes({0}, Output::kNone))
    .Doc(R"doc(
Drops the incremental base of `key`: the references to the tensors of the last
checkpoint saved with incremental_key=key, which keep them in memory. The next
save with the key is written in full. No error if the key has no base.

key: the incremental_key of the saves.
)doc");

REGISTER_OP("RestoreIteratorShards")
    .Input("prefix: string")
    .Output("state: variant")
    .SetIsStateful()
    .SetShapeFn(Shapes({0}, Output::kVector))
    .Doc(R"doc(
Reads a checkpoint written by SaveIteratorShards, verifying every checksum.

state: the 1-D variant tensor that DeserializeIterator accepts.
)doc");

REGISTER_OP("DescribeIteratorShards")
    .Input("prefix: string")
    .Output("summary: string")
    .Attr("verify: bool = false")
    .SetIsStateful()
    .SetShapeFn(Shapes({0}, Output::kScalar))
    .Doc(R"doc(
Describes a checkpoint from its index, without restoring it.

summary: a JSON object: format and TF versions, creation time, sizes, shards,
  entry and tensor counts; own_bytes (in its own shards), referenced_bytes
  (of tensors in earlier checkpoints' shards, 0 for a full save) and
  referenced_files (the sorted basenames of those shard files, which must be
  kept as long as this checkpoint is).
verify: also read every byte and check every checksum, the referenced bytes
  included. Raises DataLoss or NotFound naming what is damaged or missing.
)doc");

REGISTER_OP("SweepBesideCheckpoints")
    .Input("tf_prefix: string")
    .Input("protected_tokens: string")
    .Output("removed: string")
    .Attr("again_at_exit: bool = false")
    .SetIsStateful()
    .SetShapeFn(Shapes({0, 1}, Output::kVector))
    .Doc(R"doc(
Removes our files beside TF checkpoints ("<name>.tfdc-<token>-<part>.*", by
TrackableIterator and make_saveable_from_iterator) that no TF checkpoint
names any more: those of TF checkpoints deleted (a Saver's
max_to_keep, tf.train.CheckpointManager, a user), of saves killed before TF's
index was written, and of saves replaced by a later save of the same name.
Shard files that a kept checkpoint of ours refers to (incremental saves) stay;
our index goes before its shards. A TF checkpoint whose bundle cannot be read
keeps its files. Problems are logged, never raised: a save that runs this
first is not failed by it.

tf_prefix: a TF checkpoint prefix; the TF checkpoints of its directory with
  its base name ("ckpt" for "ckpt-3") are looked at. It need not exist.
protected_tokens: tokens of saves in flight, whose files are never touched.
removed: the paths removed.
again_at_exit: remember this sweep (its directory, base and protected tokens,
  the last one per directory and base) for SweepBesideCheckpointsAgain, which
  the Python package runs when the process exits: a TF1 Saver deletes its
  oldest checkpoint after its save, so ours of that one go then.
)doc");

REGISTER_OP("SweepBesideCheckpointsAgain")
    .Output("removed: string")
    .SetIsStateful()
    .SetShapeFn(Shapes({}, Output::kVector))
    .Doc(R"doc(
Runs again the last SweepBesideCheckpoints with again_at_exit of each directory
and base, with the tokens it protected (the save it ran for may still be in
flight; once committed, its TF checkpoint names it anyway).

removed: the paths removed.
)doc");

}  // namespace tfdata_checkpoint
