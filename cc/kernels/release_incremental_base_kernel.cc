// ReleaseIncrementalBase: drops the incremental base of a key, and with it the
// references that keep the tensors of its last checkpoint in memory.
#include <string>

#include "cc/io/incremental_bases.h"
#include "cc/kernels/prefix_input.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;

class ReleaseIncrementalBaseOp : public OpKernel {
 public:
  explicit ReleaseIncrementalBaseOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    std::string key;
    // An empty key is the full saves' and never has a base: nothing to do.
    OP_REQUIRES_OK(ctx, ScalarStringInput(ctx, 0, "key", /*allow_empty=*/true, &key));
    if (!key.empty()) IncrementalBases::Global()->Release(key);
  }
};

REGISTER_KERNEL_BUILDER(Name("ReleaseIncrementalBase").Device(tensorflow::DEVICE_CPU),
                        ReleaseIncrementalBaseOp);

}  // namespace
}  // namespace tfdata_checkpoint
