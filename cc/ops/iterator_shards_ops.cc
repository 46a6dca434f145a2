// Registration of the tfdata-checkpoint ops. Kernels live in cc/kernels/.
#include <initializer_list>

#include "absl/strings/str_cat.h"

#include "tensorflow/core/framework/common_shape_fns.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace tfdata_checkpoint {

using tensorflow::shape_inference::InferenceContext;
using tensorflow::shape_inference::ShapeHandle;

namespace {

// Checks that input i has rank ranks[i]: every op here takes a state,
// iterator or path of fixed rank.
absl::Status InputRanks(InferenceContext* c, std::initializer_list<int> ranks) {
  ShapeHandle unused;
  int i = 0;
  for (int rank : ranks) {
    TF_RETURN_IF_ERROR(c->WithRank(c->input(i++), rank, &unused));
  }
  return absl::OkStatus();
}

// The ops that take a scalar iterator and a scalar prefix, and output nothing.
absl::Status IteratorAndPrefixShapes(InferenceContext* c) { return InputRanks(c, {0, 0}); }

// The arguments SaveIteratorShards and SaveIterator share.
constexpr char kSaveArgsDoc[] = R"doc(prefix: the checkpoint prefix; files are "<prefix>.index" and
  "<prefix>.data-*". The checkpoint exists once "<prefix>.index" does.
saved_prefix: `prefix`, once committed (or, if asynchronous, once captured).
num_shards: number of shard files; 0 chooses from the size and the cores.
fsync: sync shards, index and directory before the save counts as done.
asynchronous: return once the state is captured; the files are written in the
  background. WaitForIteratorShards (or the next save into the same
  directory) waits for it and raises its error.
)doc";

}  // namespace

REGISTER_OP("SaveIteratorShards")
    .Input("state: variant")
    .Input("prefix: string")
    .Output("saved_prefix: string")
    .Attr("num_shards: int = 0")
    .Attr("fsync: bool = true")
    .Attr("asynchronous: bool = false")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(InputRanks(c, {1, 0}));
      c->set_output(0, c->Scalar());
      return absl::OkStatus();
    })
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
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(InputRanks(c, {0, 0}));
      c->set_output(0, c->Scalar());
      return absl::OkStatus();
    })
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
    .SetShapeFn(IteratorAndPrefixShapes)
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
    .SetShapeFn(IteratorAndPrefixShapes)
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
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(InputRanks(c, {0}));
      c->set_output(0, c->Vector(InferenceContext::kUnknownDim));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Waits for the background saves into `directory` ("" waits for all).

committed: the prefixes those saves committed since the last wait.
Raises the error of a background save that failed.
)doc");

REGISTER_OP("RestoreIteratorShards")
    .Input("prefix: string")
    .Output("state: variant")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(InputRanks(c, {0}));
      c->set_output(0, c->Vector(InferenceContext::kUnknownDim));
      return absl::OkStatus();
    })
    .Doc(R"doc(
Reads a checkpoint written by SaveIteratorShards, verifying every checksum.

state: the 1-D variant tensor that DeserializeIterator accepts.
)doc");

REGISTER_OP("DescribeIteratorShards")
    .Input("prefix: string")
    .Output("summary: string")
    .Attr("verify: bool = false")
    .SetIsStateful()
    .SetShapeFn([](InferenceContext* c) {
      TF_RETURN_IF_ERROR(InputRanks(c, {0}));
      c->set_output(0, c->Scalar());
      return absl::OkStatus();
    })
    .Doc(R"doc(
Describes a checkpoint from its index, without restoring it.

summary: a JSON object: format and TF versions, creation time, sizes, shards,
  entry and tensor counts.
verify: also read every byte and check every checksum. Raises DataLoss or
  NotFound naming what is damaged or missing.
)doc");

}  // namespace tfdata_checkpoint
