// SaveIteratorShards: writes an iterator state given as a variant (what
// SerializeIterator returns) as sharded files, now or in the background.
#include <memory>
#include <string>
#include <utility>

#include "cc/kernels/prefix_input.h"
#include "cc/kernels/save_kernel_common.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;

class SaveIteratorShardsOp : public OpKernel {
 public:
  explicit SaveIteratorShardsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ReadSaveAttrs(ctx, &attrs_));
  }

  void Compute(OpKernelContext* ctx) override {
    std::string prefix;
    OP_REQUIRES_OK(ctx, ScalarStringInput(ctx, 1, "prefix", /*allow_empty=*/false, &prefix));
    auto captured = std::make_shared<CapturedState>();
    OP_REQUIRES_OK(ctx, CapturedState::FromVariantTensor(ctx->input(0), captured.get()));
    WriteCapturedState(ctx, std::move(captured), prefix, attrs_);
  }

 private:
  SaveAttrs attrs_;
};

REGISTER_KERNEL_BUILDER(Name("SaveIteratorShards").Device(tensorflow::DEVICE_CPU),
                        SaveIteratorShardsOp);

}  // namespace
}  // namespace tfdata_checkpoint
