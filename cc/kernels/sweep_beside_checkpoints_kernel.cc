// SweepBesideCheckpoints: removes our files beside TF checkpoints that no TF
// checkpoint names any more (cc/io/beside_sweep.h).
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cc/io/beside_sweep.h"
#include "cc/kernels/prefix_input.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;

absl::Status OutputPaths(OpKernelContext* ctx, const std::vector<std::string>& paths) {
  tensorflow::Tensor* out = nullptr;
  if (absl::Status s = ctx->allocate_output(
          0, tensorflow::TensorShape({static_cast<int64_t>(paths.size())}), &out);
      !s.ok()) {
    return s;
  }
  for (size_t i = 0; i < paths.size(); ++i) out->flat<tensorflow::tstring>()(i) = paths[i];
  return absl::OkStatus();
}

class SweepBesideCheckpointsOp : public OpKernel {
 public:
  explicit SweepBesideCheckpointsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("again_at_exit", &again_at_exit_));
  }

  void Compute(OpKernelContext* ctx) override {
    std::string tf_prefix;
    OP_REQUIRES_OK(ctx, ScalarStringInput(ctx, 0, "tf_prefix", /*allow_empty=*/false, &tf_prefix));
    const tensorflow::Tensor& tokens = ctx->input(1);
    OP_REQUIRES(ctx, tokens.dtype() == tensorflow::DT_STRING && tokens.dims() <= 1,
                absl::InvalidArgumentError(absl::StrCat(
                    "protected_tokens must be a string vector, got shape ",
                    tokens.shape().DebugString())));
    std::set<std::string> protected_tokens;
    for (int64_t i = 0; i < tokens.NumElements(); ++i) {
      protected_tokens.emplace(tokens.flat<tensorflow::tstring>()(i));
    }
    std::vector<std::string> removed;
    SweepBesideCheckpoints(tf_prefix, protected_tokens, &removed);
    if (again_at_exit_) RememberSweep(tf_prefix, protected_tokens);
    OP_REQUIRES_OK(ctx, OutputPaths(ctx, removed));
  }

 private:
  bool again_at_exit_ = false;
};

class SweepBesideCheckpointsAgainOp : public OpKernel {
 public:
  explicit SweepBesideCheckpointsAgainOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    std::vector<std::string> removed;
    SweepRememberedAgain(&removed);
    OP_REQUIRES_OK(ctx, OutputPaths(ctx, removed));
  }
};

REGISTER_KERNEL_BUILDER(Name("SweepBesideCheckpoints").Device(tensorflow::DEVICE_CPU),
                        SweepBesideCheckpointsOp);
REGISTER_KERNEL_BUILDER(Name("SweepBesideCheckpointsAgain").Device(tensorflow::DEVICE_CPU),
                        SweepBesideCheckpointsAgainOp);

}  // namespace
}  // namespace tfdata_checkpoint
