// CheckIteratorElementSpec: whether a checkpoint's state fits an iterator,
// from the element spec in its index, before anything is restored.
#include <string>

#include "cc/format/checkpoint_index.h"
#include "cc/io/index_file.h"
#include "cc/kernels/iterator_resource.h"
#include "cc/kernels/prefix_input.h"
#include "cc/state/element_spec.h"
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
    tensorflow::data::IteratorResource* iterator = nullptr;
    OP_REQUIRES_OK(ctx, LookupIterator(ctx, 0, &iterator));
    tensorflow::core::ScopedUnref unref(iterator);
    std::string prefix;
    OP_REQUIRES_OK(ctx, ScalarStringInput(ctx, 1, "prefix", /*allow_empty=*/false, &prefix));
    CheckpointIndex index;
    OP_REQUIRES_OK(ctx, ReadIndexElementSpec(prefix, &index));
    OP_REQUIRES_OK(ctx, CheckElementSpec(index.element_spec, iterator->output_dtypes(),
                                         iterator->output_shapes(), prefix));
  }
};

REGISTER_KERNEL_BUILDER(Name("CheckIteratorElementSpec").Device(tensorflow::DEVICE_CPU),
                        CheckIteratorElementSpecOp);

}  // namespace
}  // namespace tfdata_checkpoint
