#include <string>

#include "cc/format/checkpoint_index.h"
#include "cc/format/index_summary.h"
#include "cc/io/checkpoint_reader.h"
#include "cc/io/index_file.h"
#include "cc/kernels/prefix_input.h"
#include "tensorflow/core/framework/op_kernel.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;

class DescribeIteratorShardsOp : public OpKernel {
 public:
  explicit DescribeIteratorShardsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("verify", &verify_));
  }

  void Compute(OpKernelContext* ctx) override {
    std::string prefix;
    OP_REQUIRES_OK(ctx, ScalarStringInput(ctx, 0, "prefix", /*allow_empty=*/false, &prefix));
    CheckpointIndex index;
    OP_REQUIRES_OK(ctx, verify_ ? VerifyCheckpoint(prefix, &index)
                                : ReadIndexFile(prefix, &index));
    tensorflow::Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, tensorflow::TensorShape({}), &out));
    out->scalar<tensorflow::tstring>()() = IndexSummaryJson(index);
  }

 private:
  bool verify_ = false;
};

REGISTER_KERNEL_BUILDER(Name("DescribeIteratorShards").Device(tensorflow::DEVICE_CPU),
                        DescribeIteratorShardsOp);

}  // namespace
}  // namespace tfdata_checkpoint
