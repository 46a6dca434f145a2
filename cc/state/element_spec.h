// The element spec (dtypes and shapes of what an iterator hands out) as a
// checkpoint records it, and the check that a checkpoint fits an iterator.
//
// TensorFlow's iterator Restore checks names and keys, not dtypes: the state
// of a pipeline of the same structure but other element types (say, the same
// map-shuffle-prefetch chain over strings instead of int64) restores without
// error, and the wrong elements come out later, or never when the buffers
// were empty. The recorded element spec rejects it before the iterator is
// touched.
#ifndef TFDATA_CHECKPOINT_CC_STATE_ELEMENT_SPEC_H_
#define TFDATA_CHECKPOINT_CC_STATE_ELEMENT_SPEC_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cc/format/checkpoint_index.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/framework/types.h"

namespace tfdata_checkpoint {

// The spec of an iterator's elements, from its output dtypes and shapes.
std::vector<ComponentSpec> ElementSpecOf(const tensorflow::DataTypeVector& dtypes,
                                         const std::vector<tensorflow::PartialTensorShape>& shapes);

// OK when `saved` is unknown (format 1.0, or saved from a serialized state),
// or has as many components as `dtypes`, each of the same dtype and a
// compatible shape. Otherwise InvalidArgument naming the checkpoint `prefix`
// and both specs.
absl::Status CheckElementSpec(const std::optional<std::vector<ComponentSpec>>& saved,
                              const tensorflow::DataTypeVector& dtypes,
                              const std::vector<tensorflow::PartialTensorShape>& shapes,
                              const std::string& prefix);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_STATE_ELEMENT_SPEC_H_
