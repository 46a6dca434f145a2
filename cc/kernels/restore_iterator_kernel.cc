// RestoreIterator: reads a checkpoint and restores an iterator through its
// own Restore, with our StateReader handing out the tensors the shards were
// read into (no variant tensor, no DeserializeIterator, no VariantTensorData
// per entry).
#include <memory>
#include <string>

#include "cc/io/checkpoint_reader.h"
#include "cc/kernels/iterator_resource.h"
#include "cc/state/restored_state.h"
#include "cc/state/state_reader.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op_kernel.h"

#ifndef TFDC_TF_VERSION
#error "TFDC_TF_VERSION (the TensorFlow version built against) comes from CMakeLists.txt"
#endif

namespace tfdata_checkpoint {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;

class RestoreIteratorOp : public OpKernel {
 public:
  explicit RestoreIteratorOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    IteratorAndPrefix in;
    OP_REQUIRES_OK(ctx, ReadIteratorAndPrefix(ctx, &in));
    // Everything is read and checked before the iterator is touched: a
    // damaged checkpoint, or one of another pipeline, leaves it as it was.
    RestoredState state;
    std::string saved_tf_version;
    OP_REQUIRES_OK(ctx, ReadCheckpointState(in.prefix, &state, [&](const CheckpointIndex& index) {
                     saved_tf_version = index.tf_version;
                     return in.CheckFits(index);
                   }));
    std::unique_ptr<StateReader> reader;
    OP_REQUIRES_OK(ctx, StateReader::Create(&state, in.prefix, &reader));
    OP_REQUIRES_OK(ctx, WithTensorFlowVersions(in.iterator->Restore(ctx, reader.get()),
                                               saved_tf_version));
  }

 private:
  // The state a dataset keeps (its names and keys) may change between
  // TensorFlow releases: when the checkpoint comes from another one, a
  // failed Restore says so rather than only suspecting another pipeline.
  static absl::Status WithTensorFlowVersions(const absl::Status& status,
                                             const std::string& saved) {
    if (status.ok() || saved.empty() || saved == TFDC_TF_VERSION) return status;
    return absl::Status(
        status.code(),
        absl::StrCat(status.message(), " (the checkpoint was written under TensorFlow ", saved,
                     " and is restored under TensorFlow ", TFDC_TF_VERSION,
                     ": the iterator state a pipeline keeps can differ between TensorFlow "
                     "versions; restore it under TensorFlow ", saved,
                     ", or start the input pipeline over)"));
  }
};

REGISTER_KERNEL_BUILDER(Name("RestoreIterator").Device(tensorflow::DEVICE_CPU),
                        RestoreIteratorOp);

}  // namespace
}  // namespace tfdata_checkpoint
