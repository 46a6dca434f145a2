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
#include "tensorflow/core/framework/op_kernel.h"

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
    OP_REQUIRES_OK(ctx, ReadCheckpointState(in.prefix, &state, [&](const CheckpointIndex& index) {
                     return in.CheckFits(index);
                   }));
    std::unique_ptr<StateReader> reader;
    OP_REQUIRES_OK(ctx, StateReader::Create(&state, in.prefix, &reader));
    OP_REQUIRES_OK(ctx, in.iterator->Restore(ctx, reader.get()));
  }
};

REGISTER_KERNEL_BUILDER(Name("RestoreIterator").Device(tensorflow::DEVICE_CPU),
                        RestoreIteratorOp);

}  // namespace
}  // namespace tfdata_checkpoint
