// What both save kernels (SaveIterator, SaveIteratorShards) do alike once the
// state is captured: read the write attributes, then write now or hand the
// write to the background, and output the prefix.
#ifndef TFDATA_CHECKPOINT_CC_KERNELS_SAVE_KERNEL_COMMON_H_
#define TFDATA_CHECKPOINT_CC_KERNELS_SAVE_KERNEL_COMMON_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "cc/format/shard_plan.h"
#include "cc/io/background_saves.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/checkpoint_writer.h"
#include "cc/kernels/prefix_input.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace tfdata_checkpoint {

// The attributes num_shards, fsync, asynchronous and incremental_key, checked.
struct SaveAttrs {
  WriteOptions options;
  bool asynchronous = false;
};

inline absl::Status ReadSaveAttrs(tensorflow::OpKernelConstruction* ctx, SaveAttrs* attrs) {
  TF_RETURN_IF_ERROR(ctx->GetAttr("num_shards", &attrs->options.num_shards));
  TF_RETURN_IF_ERROR(ctx->GetAttr("fsync", &attrs->options.fsync));
  TF_RETURN_IF_ERROR(ctx->GetAttr("asynchronous", &attrs->asynchronous));
  TF_RETURN_IF_ERROR(ctx->GetAttr("incremental_key", &attrs->options.incremental_key));
  if (attrs->options.num_shards < 0 || attrs->options.num_shards > kMaxShards) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_shards must be 0 (automatic) or between 1 and ", kMaxShards, ", got ",
                     attrs->options.num_shards));
  }
  return absl::OkStatus();
}

// Writes `captured` as the checkpoint `prefix` (in the background if asked;
// the state is shared with the background write, not copied) and sets the
// op's output to the prefix.
// Either way it first waits for the background save into the same directory,
// and a failure of that save not reported yet is returned instead of saving.
inline void WriteCapturedState(tensorflow::OpKernelContext* ctx,
                               std::shared_ptr<const CapturedState> captured,
                               const std::string& prefix, const SaveAttrs& attrs) {
  OP_REQUIRES_OK(ctx, CheckSavePrefix(prefix));
  const std::string key = BackgroundSaveKey(PrefixDirectory(prefix));
  if (attrs.asynchronous) {
    const WriteOptions options = attrs.options;
    OP_REQUIRES_OK(ctx, BackgroundSaves::Global()->Start(
                            key, prefix, [captured, prefix, options] {
                              return WriteCheckpoint(*captured, prefix, options);
                            }));
  } else {
    OP_REQUIRES_OK(ctx, BackgroundSaves::Global()->RunNow(key, [&] {
      return WriteCheckpoint(*captured, prefix, attrs.options);
    }));
  }
  tensorflow::Tensor* out = nullptr;
  OP_REQUIRES_OK(ctx, ctx->allocate_output(0, tensorflow::TensorShape({}), &out));
  out->scalar<tensorflow::tstring>()() = prefix;
}

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_KERNELS_SAVE_KERNEL_COMMON_H_
