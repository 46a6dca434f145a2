// Reads a non-empty scalar string input, the way every op here takes paths.
#ifndef TFDATA_CHECKPOINT_CC_KERNELS_PREFIX_INPUT_H_
#define TFDATA_CHECKPOINT_CC_KERNELS_PREFIX_INPUT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/tensor_shape.h"

namespace tfdata_checkpoint {

inline absl::Status ScalarStringInput(tensorflow::OpKernelContext* ctx, int index,
                                      const char* name, bool allow_empty,
                                      std::string* out) {
  const tensorflow::Tensor& t = ctx->input(index);
  if (t.dtype() != tensorflow::DT_STRING ||
      !tensorflow::TensorShapeUtils::IsScalar(t.shape())) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be a scalar string, got shape ", t.shape().DebugString()));
  }
  *out = std::string(t.scalar<tensorflow::tstring>()());
  if (!allow_empty && out->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " must not be empty"));
  }
  return absl::OkStatus();
}

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_KERNELS_PREFIX_INPUT_H_
