#include <string>
#include <vector>

#include "cc/io/background_saves.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/kernels/prefix_input.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;

class WaitForIteratorShardsOp : public OpKernel {
 public:
  explicit WaitForIteratorShardsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    std::string directory;
    OP_REQUIRES_OK(ctx,
                   ScalarStringInput(ctx, 0, "directory", /*allow_empty=*/true, &directory));
    std::vector<std::string> committed;
    const absl::Status status = BackgroundSaves::Global()->Wait(
        directory.empty() ? "" : BackgroundSaveKey(directory), &committed);
    OP_REQUIRES_OK(ctx, status);
    tensorflow::Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, tensorflow::TensorShape({static_cast<int64_t>(committed.size())}),
                            &out));
    for (size_t i = 0; i < committed.size(); ++i) {
      out->vec<tensorflow::tstring>()(i) = committed[i];
    }
  }
};

REGISTER_KERNEL_BUILDER(Name("WaitForIteratorShards").Device(tensorflow::DEVICE_CPU),
                        WaitForIteratorShardsOp);

}  // namespace
}  // namespace tfdata_checkpoint
