// Reading the shards of a checkpoint: byte ranges of every shard in
// parallel, each straight into where its pieces go, every shard's and every
// piece's CRC32C checked. What the bytes become is checkpoint_reader's.
#ifndef TFDATA_CHECKPOINT_CC_IO_RANGE_READER_H_
#define TFDATA_CHECKPOINT_CC_IO_RANGE_READER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cc/format/checkpoint_index.h"
#include "cc/format/piece_layout.h"

namespace tfdata_checkpoint {

// A tensor that an incremental checkpoint references in an earlier
// checkpoint's shards (a referenced stream), as the index gives it.
struct ReferencedPiece {
  uint32_t stream = 0;  // >= 1: CheckpointIndex::streams[stream - 1].
  uint32_t shard = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t crc = 0;
  uint64_t entry = 0;           // For error messages.
  char* destination = nullptr;  // Null: only verify.
};

// The pieces of a checkpoint and, per piece, what else reading needs: its
// CRC from the index, and where its bytes go (null to only verify them).
// `pieces` are the own stream's; `referenced` the tensors in other
// checkpoints' shards, in entry order.
struct ReadLayout {
  PieceLayout pieces;
  std::vector<uint32_t> crc;
  std::vector<char*> destination;
  std::vector<ReferencedPiece> referenced;
};

// The layout of a decoded index with no destinations: reading it only
// verifies the bytes.
ReadLayout VerificationLayout(const CheckpointIndex& index);

// Reads every own shard of the checkpoint at `prefix` (as `index` lists
// them) and the referenced pieces of the earlier checkpoints' shards (those,
// and the gaps of up to 64 KiB between them) into the destinations, and
// checks every own shard's size and checksum, the size of every referenced
// shard file, and every piece's checksum. NotFound names a missing shard, DataLoss a
// damaged one (and, for a piece, its entry).
absl::Status ReadShards(const std::string& prefix, const CheckpointIndex& index,
                        const ReadLayout& layout);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_RANGE_READER_H_
