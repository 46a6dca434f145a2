// Looks up the IteratorResource behind an op's resource input, as TF's own
// SerializeIterator and DeserializeIterator kernels do.
#ifndef TFDATA_CHECKPOINT_CC_KERNELS_ITERATOR_RESOURCE_H_
#define TFDATA_CHECKPOINT_CC_KERNELS_ITERATOR_RESOURCE_H_

#include <string>

#include "absl/status/status.h"
#include "cc/format/checkpoint_index.h"
#include "cc/kernels/prefix_input.h"
#include "cc/state/element_spec.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/resource_mgr.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/kernels/data/iterator_ops.h"
#include "tensorflow/core/platform/refcount.h"

namespace tfdata_checkpoint {

// The inputs of the ops that take an iterator (input 0) and a checkpoint
// prefix (input 1). Holds a reference to the iterator for as long as it lives.
struct IteratorAndPrefix {
  tensorflow::core::RefCountPtr<tensorflow::data::IteratorResource> iterator;
  std::string prefix;

  // Whether the state in `index` (the checkpoint at `prefix`) fits `iterator`.
  absl::Status CheckFits(const CheckpointIndex& index) const {
    return CheckElementSpec(index.element_spec, iterator->output_dtypes(),
                            iterator->output_shapes(), prefix);
  }
};

inline absl::Status ReadIteratorAndPrefix(tensorflow::OpKernelContext* ctx,
                                          IteratorAndPrefix* out) {
  if (ctx->input(0).dtype() != tensorflow::DT_RESOURCE ||
      !tensorflow::TensorShapeUtils::IsScalar(ctx->input(0).shape())) {
    return absl::InvalidArgumentError("iterator must be a scalar resource handle");
  }
  tensorflow::data::IteratorResource* iterator = nullptr;
  TF_RETURN_IF_ERROR(
      tensorflow::LookupResource(ctx, tensorflow::HandleFromInput(ctx, 0), &iterator));
  out->iterator.reset(iterator);
  return ScalarStringInput(ctx, 1, "prefix", /*allow_empty=*/false, &out->prefix);
}

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_KERNELS_ITERATOR_RESOURCE_H_
