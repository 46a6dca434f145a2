// CheckIteratorElementSpec: whether a checkpoint's state fits an iterator,
// from the element spec in its index, before anything is restored.
#include <string>

#include "cc/format/checkpoint_index.h"
#include "cc/io/index_file.h"
#include "cc/kernels/iterator_resource.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;

class CheckIteratorElementSpecOp : public OpKernel {
 public:
  explicit CheckIteratorElementSpecOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    IteratorAndPrefix in;
    OP_REQUIRES_OK(ctx, ReadIteratorAndPrefix(ctx, &in));
    CheckpointIndex index;
    OP_REQUIRES_OK(ctx, ReadIndexElementSpec(in.prefix, &index));
    OP_REQUIRES_OK(ctx, in.CheckFits(index));
  }
};

REGISTER_KERNEL_BUILDER(Name("CheckIteratorElementSpec").Device(tensorflow::DEVICE_CPU),
                        CheckIteratorElementSpecOp);

}  // namespace
}  // namespace tfdata_checkpoint
