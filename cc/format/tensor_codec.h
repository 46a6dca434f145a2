// How one tensor of an iterator-state entry becomes bytes in a shard and back.
// Numeric and bool tensors are written straight from their buffers; string
// tensors as their lengths followed by the strings' own bytes; every other
// dtype (nested variants, resources) as a serialized TensorProto.
#ifndef TFDATA_CHECKPOINT_CC_FORMAT_TENSOR_CODEC_H_
#define TFDATA_CHECKPOINT_CC_FORMAT_TENSOR_CODEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cc/format/checkpoint_index.h"
#include "tensorflow/core/framework/tensor.h"

namespace tfdata_checkpoint {

// The bytes of one tensor as a list of chunks that point into the tensor (so
// the tensor must outlive the payload) or into `owned` (so a payload cannot be
// moved once encoded).
struct TensorPayload {
  TensorPayload() = default;
  TensorPayload(const TensorPayload&) = delete;
  TensorPayload& operator=(const TensorPayload&) = delete;

  TensorEncoding encoding = TensorEncoding::kRaw;
  absl::InlinedVector<absl::string_view, 1> chunks;
  std::string owned;
  uint64_t size = 0;
};

TensorEncoding EncodingFor(tensorflow::DataType dtype);

// Fills `payload` for `tensor`. Copies bytes only for kTensorProto.
absl::Status EncodeTensor(const tensorflow::Tensor& tensor, TensorPayload* payload);

// Allocates the tensor a record describes. For kRaw, the restored bytes are
// then read straight into its buffer (see RawBuffer).
absl::Status AllocateTensor(const TensorRecord& record, tensorflow::Tensor* tensor);

// The writable buffer of a kRaw tensor allocated by AllocateTensor.
char* RawBuffer(tensorflow::Tensor* tensor);

// Rebuilds a kStringList or kTensorProto tensor from its bytes.
absl::Status DecodeTensor(const TensorRecord& record, absl::string_view bytes,
                          tensorflow::Tensor* tensor);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_FORMAT_TENSOR_CODEC_H_
