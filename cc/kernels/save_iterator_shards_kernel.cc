#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cc/format/shard_plan.h"
#include "cc/io/background_saves.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/checkpoint_writer.h"
#include "cc/kernels/prefix_input.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;

class SaveIteratorShardsOp : public OpKernel {
 public:
  explicit SaveIteratorShardsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("num_shards", &options_.num_shards));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("fsync", &options_.fsync));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("asynchronous", &asynchronous_));
    OP_REQUIRES(ctx, options_.num_shards >= 0 && options_.num_shards <= kMaxShards,
                absl::InvalidArgumentError(absl::StrCat(
                    "num_shards must be 0 (automatic) or between 1 and ", kMaxShards,
                    ", got ", options_.num_shards)));
  }

  void Compute(OpKernelContext* ctx) override {
    std::string prefix;
    OP_REQUIRES_OK(ctx, ScalarStringInput(ctx, 1, "prefix", /*allow_empty=*/false, &prefix));
    auto captured = std::make_shared<CapturedState>();
    OP_REQUIRES_OK(ctx, CapturedState::FromVariantTensor(ctx->input(0), captured.get()));
    if (asynchronous_) {
      const WriteOptions options = options_;
      OP_REQUIRES_OK(ctx, BackgroundSaves::Global()->Start(
                              NormalizeDirectory(PrefixDirectory(prefix)), prefix,
                              [captured, prefix, options] {
                                return WriteCheckpoint(*captured, prefix, options);
                              }));
    } else {
      OP_REQUIRES_OK(ctx, WriteCheckpoint(*captured, prefix, options_));
    }
    tensorflow::Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, tensorflow::TensorShape({}), &out));
    out->scalar<tensorflow::tstring>()() = prefix;
  }

 private:
  WriteOptions options_;
  bool asynchronous_ = false;
};

REGISTER_KERNEL_BUILDER(Name("SaveIteratorShards").Device(tensorflow::DEVICE_CPU),
                        SaveIteratorShardsOp);

}  // namespace
}  // namespace tfdata_checkpoint
