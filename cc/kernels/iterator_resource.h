// Looks up the IteratorResource behind an op's resource input, as TF's own
// SerializeIterator and DeserializeIterator kernels do.
#ifndef TFDATA_CHECKPOINT_CC_KERNELS_ITERATOR_RESOURCE_H_
#define TFDATA_CHECKPOINT_CC_KERNELS_ITERATOR_RESOURCE_H_

#include "absl/status/status.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/kernels/data/iterator_ops.h"

namespace tfdata_checkpoint {

// On success the caller owns a reference to `*iterator`.
inline absl::Status LookupIterator(tensorflow::OpKernelContext* ctx, int input,
                                   tensorflow::data::IteratorResource** iterator) {
  if (ctx->input(input).dtype() != tensorflow::DT_RESOURCE ||
      !tensorflow::TensorShapeUtils::IsScalar(ctx->input(input).shape())) {
    return absl::InvalidArgumentError("iterator must be a scalar resource handle");
  }
  return tensorflow::LookupResource(ctx, tensorflow::HandleFromInput(ctx, input), iterator);
}

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_KERNELS_ITERATOR_RESOURCE_H_
