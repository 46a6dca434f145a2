// How a checkpoint is written: shards in parallel, then the index, committed
// by an atomic rename.
#ifndef TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_WRITER_H_
#define TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/variant_tensor_data.h"

namespace tfdata_checkpoint {

// The iterator state as SerializeIterator produced it. Holding the tensor
// keeps every buffered element alive by reference count; nothing is copied.
class CapturedState {
 public:
  // Fails with InvalidArgument unless `state` is a 1-D variant tensor of
  // iterator-state entries.
  static absl::Status Capture(const tensorflow::Tensor& state, CapturedState* out);

  const std::vector<const tensorflow::VariantTensorData*>& entries() const {
    return entries_;
  }

 private:
  tensorflow::Tensor state_;
  std::vector<const tensorflow::VariantTensorData*> entries_;
};

struct WriteOptions {
  int64_t num_shards = 0;  // 0: automatic.
  bool fsync = true;
};

// Writes `state` as the checkpoint `prefix` and commits it. On failure
// nothing is committed and a checkpoint already at `prefix` is untouched.
absl::Status WriteCheckpoint(const CapturedState& state, const std::string& prefix,
                             const WriteOptions& options);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_WRITER_H_
