// How a checkpoint is written: shards in parallel, then the index, committed
// by an atomic rename.
#ifndef TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_WRITER_H_
#define TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cc/state/captured_state.h"

namespace tfdata_checkpoint {

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
