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
  // Empty: a full save that leaves the incremental bases alone (the raw ops'
  // default). A key: the save may reference the tensors of the last
  // checkpoint committed with this key in this process (its base, see
  // cc/io/incremental_bases.h) instead of writing them again, and becomes
  // the key's base once committed, whether it was written in full or not.
  std::string incremental_key;
};

// What a save wrote.
struct WriteReport {
  bool incremental = false;  // Format 2.0, with at least one reference.
  std::string full_reason;   // Why not, for a save with a key written in full.
  uint64_t own_bytes = 0;         // Written into its own shards.
  uint64_t referenced_bytes = 0;  // Referenced in earlier checkpoints' shards.
};

// Writes `state` as the checkpoint `prefix` and commits it. On failure
// nothing is committed, a checkpoint already at `prefix` is untouched and
// the incremental base of `options.incremental_key` stays what it was.
absl::Status WriteCheckpoint(const CapturedState& state, const std::string& prefix,
                             const WriteOptions& options, WriteReport* report = nullptr);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_CHECKPOINT_WRITER_H_
