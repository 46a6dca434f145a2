#include <memory>
#include <string>
#include <vector>

#include "cc/io/checkpoint_reader.h"
#include "cc/kernels/prefix_input.h"
#include "tensorflow/core/data/serialization_utils.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/variant.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::data::IteratorStateVariant;

class RestoreIteratorShardsOp : public OpKernel {
 public:
  explicit RestoreIteratorShardsOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    std::string prefix;
    OP_REQUIRES_OK(ctx, ScalarStringInput(ctx, 0, "prefix", /*allow_empty=*/false, &prefix));
    std::vector<std::unique_ptr<tensorflow::VariantTensorData>> entries;
    OP_REQUIRES_OK(ctx, ReadCheckpoint(prefix, &entries));
    tensorflow::Tensor* out = nullptr;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(
                            0, tensorflow::TensorShape({static_cast<int64_t>(entries.size())}),
                            &out));
    auto variants = out->vec<tensorflow::Variant>();
    for (size_t i = 0; i < entries.size(); ++i) {
      // Handing the data over without a proto round trip keeps the restored
      // tensors the very buffers the shards were read into.
      IteratorStateVariant& state = variants(i).emplace<IteratorStateVariant>();
      OP_REQUIRES_OK(ctx, state.InitializeFromVariantData(std::move(entries[i])));
    }
  }
};

REGISTER_KERNEL_BUILDER(Name("RestoreIteratorShards").Device(tensorflow::DEVICE_CPU),
                        RestoreIteratorShardsOp);

}  // namespace
}  // namespace tfdata_checkpoint
