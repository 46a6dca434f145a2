// Splits a byte stream (the tensors of a checkpoint laid end to end) into
// byte-balanced shards, and maps pieces of that stream onto byte ranges.
#ifndef TFDATA_CHECKPOINT_CC_FORMAT_SHARD_PLAN_H_
#define TFDATA_CHECKPOINT_CC_FORMAT_SHARD_PLAN_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace tfdata_checkpoint {

// Automatic sharding aims at shards of about this size.
inline constexpr uint64_t kTargetShardBytes = 64ull << 20;
inline constexpr int64_t kMaxShards = 65536;

// Shard count for `total_bytes` when the user asks for 0 (automatic): enough
// shards to keep every IO thread busy, none much smaller than the target.
int64_t AutoShardCount(uint64_t total_bytes, int num_io_threads);

// `bounds` has num_shards + 1 elements: shard s holds [bounds[s], bounds[s+1]).
// Sizes differ by at most one byte.
absl::Status PlanShards(uint64_t total_bytes, int64_t num_shards,
                        std::vector<uint64_t>* bounds);

// The part of piece `piece` (bytes [piece_offset, piece_offset + length) of
// that piece) that falls into one range.
struct Segment {
  size_t piece;
  uint64_t piece_offset;
  uint64_t length;
};

// Pieces of `piece_sizes` lie end to end from byte 0. `bounds` (ascending,
// first 0, last the total) cuts that stream into ranges; returns, per range,
// the segments it holds in stream order. Empty pieces belong to the range
// that contains their position (the last range for the very end).
std::vector<std::vector<Segment>> SegmentsByRange(
    const std::vector<uint64_t>& piece_sizes, const std::vector<uint64_t>& bounds);

// Cuts each [bounds[i], bounds[i+1]) into ranges of at most `max_bytes`;
// returns the new bounds and, in `owner`, which original range each belongs to.
std::vector<uint64_t> SplitRanges(const std::vector<uint64_t>& bounds,
                                  uint64_t max_bytes, std::vector<size_t>* owner);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_FORMAT_SHARD_PLAN_H_
