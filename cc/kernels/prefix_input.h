// Reads a non-empty scalar string input, the way every op here takes paths.
#ifndef TFDATA_CHECKPOINT_CC_KERNELS_PREFIX_INPUT_H_
#define TFDATA_CHECKPOINT_CC_KERNELS_PREFIX_INPUT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
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

// A save's prefix must name a file: its files are "<prefix>.index" and
// "<basename of prefix>.data-...". One ending in "/" (or in "/." or "/..")
// names a directory; the index would be written but could never be read
// back ("bad name for shard 0"), so such a save is refused before it starts.
inline absl::Status CheckSavePrefix(const std::string& prefix) {
  const size_t slash = prefix.rfind('/');
  const absl::string_view last =
      slash == std::string::npos ? absl::string_view(prefix)
                                 : absl::string_view(prefix).substr(slash + 1);
  if (last.empty() || last == "." || last == "..") {
    return absl::InvalidArgumentError(absl::StrCat(
        "prefix '", prefix, "' ends in a directory, not a file name: a checkpoint is ",
        "<prefix>.index and its shard files, so the prefix must end in a file name, ",
        "e.g. <directory>/input.ckpt-<step>"));
  }
  return absl::OkStatus();
}

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_KERNELS_PREFIX_INPUT_H_
