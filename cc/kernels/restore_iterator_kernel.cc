// RestoreIterator: reads a checkpoint and restores an iterator through its
// own Restore, with our StateReader handing out the tensors the shards were
// read into (no variant tensor, no DeserializeIterator, no VariantTensorData
// per entry).
#include <memory>
#include <string>

#include "cc/io/checkpoint_reader.h"
#include "cc/kernels/iterator_resource.h"
#include "cc/kernels/prefix_input.h"
#include "cc/state/element_spec.h"
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
    tensorflow::data::IteratorResource* iterator = nullptr;
    OP_REQUIRES_OK(ctx, LookupIterator(ctx, 0, &iterator));
    tensorflow::core::ScopedUnref unref(iterator);
    std::string prefix;
    OP_REQUIRES_OK(ctx, ScalarStringInput(ctx, 1, "prefix", /*allow_empty=*/false, &prefix));
    // Everything is read and checked before the iterator is touched: a
    // damaged checkpoint, or one of another pipeline, leaves it as it was.
    RestoredState state;
    OP_REQUIRES_OK(ctx, ReadCheckpointState(prefix, &state, [&](const CheckpointIndex& index) {
                     return CheckElementSpec(index.element_spec, iterator->output_dtypes(),
                                             iterator->output_shapes(), prefix);
                   }));
    std::unique_ptr<StateReader> reader;
    OP_REQUIRES_OK(ctx, StateReader::Create(&state, prefix, &reader));
    OP_REQUIRES_OK(ctx, iterator->Restore(ctx, reader.get()));
  }
};

REGISTER_KERNEL_BUILDER(Name("RestoreIterator").Device(tensorflow::DEVICE_CPU),
                        RestoreIteratorOp);

}  // namespace
}  // namespace tfdata_checkpoint
