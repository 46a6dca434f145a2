// How a checkpoint is read back: shards in parallel, straight into the
// destination tensors, every byte checked against its CRC32C.
#ifndef TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_READER_H_
#define TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_READER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cc/format/checkpoint_index.h"
#include "cc/state/restored_state.h"
#include "tensorflow/core/framework/variant_tensor_data.h"

namespace tfdata_checkpoint {

// Inspects a decoded index before any shard is read.
using IndexCheck = std::function<absl::Status(const CheckpointIndex&)>;

// Reads and verifies the checkpoint at `prefix` into `state`, each tensor
// read straight into its own buffer. NotFound names a missing file, DataLoss
// a damaged one; `check_index`, if given, can fail the read before the
// shards are read.
absl::Status ReadCheckpointState(const std::string& prefix, RestoredState* state,
                                 const IndexCheck& check_index = nullptr);

// Reads and verifies the checkpoint at `prefix` and rebuilds its entries.
// NotFound names a missing file, DataLoss a damaged one.
absl::Status ReadCheckpoint(
    const std::string& prefix,
    std::vector<std::unique_ptr<tensorflow::VariantTensorData>>* entries);

// Reads every byte of the checkpoint at `prefix` and checks every checksum,
// without building tensors. Fills `index` when the index itself is readable.
absl::Status VerifyCheckpoint(const std::string& prefix, CheckpointIndex* index);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_READER_H_
