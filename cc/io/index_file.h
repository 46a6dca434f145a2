// Reading an index file, and committing a new one atomically.
#ifndef TFDATA_CHECKPOINT_CC_IO_INDEX_FILE_H_
#define TFDATA_CHECKPOINT_CC_IO_INDEX_FILE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cc/format/checkpoint_index.h"

namespace tfdata_checkpoint {

// The index file of `prefix`, whole. NotFound when no checkpoint exists there.
absl::Status ReadIndexBytes(const std::string& prefix, std::string* data);

// NotFound when no checkpoint exists at `prefix`; DataLoss when its index is
// damaged.
absl::Status ReadIndexFile(const std::string& prefix, CheckpointIndex* index);

// Reads only the header and shard list of the index at `prefix`.
absl::Status ReadIndexShards(const std::string& prefix, CheckpointIndex* index);

// Reads and checks the whole index at `prefix` but keeps only the header,
// shard list and element spec: `index->entries` stays empty.
absl::Status ReadIndexElementSpec(const std::string& prefix, CheckpointIndex* index);

// Writes the index under a temporary name and renames it to "<prefix>.index".
// Then removes the own shards of the index it replaced, if any, except those
// named in `keep_files` (sorted basenames: the shards the new index, or the
// incremental base it was written from, references). Shards the replaced
// index referenced belong to other checkpoints and are left alone.
// `*renamed` tells whether the rename happened: after it, the new checkpoint
// is the one at `prefix` even if a later step (syncing the directory) failed.
absl::Status CommitIndex(const CheckpointIndex& index, const std::string& prefix,
                         bool fsync, bool* renamed,
                         const std::vector<std::string>& keep_files = {});

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_INDEX_FILE_H_
