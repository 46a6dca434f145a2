// Splits a byte stream (the tensors of a checkpoint laid end to end) into
// byte-balanced shards, and shards into ranges. Which pieces of the stream
// fall into a range is cc/format/piece_layout.h.
#ifndef TFDATA_CHECKPOINT_CC_FORMAT_SHARD_PLAN_H_
#define TFDATA_CHECKPOINT_CC_FORMAT_SHARD_PLAN_H_

#include <cstddef>
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

// The range of `bounds` (ascending, first 0, last the total; at least one
// range) that holds byte `pos`: the first that ends after it, the last one
// for the very end. Empty ranges hold nothing.
size_t RangeHolding(const std::vector<uint64_t>& bounds, uint64_t pos);

// Cuts each [bounds[i], bounds[i+1]) into ranges of at most `max_bytes`;
// returns the new bounds and, in `owner`, which original range each belongs to.
std::vector<uint64_t> SplitRanges(const std::vector<uint64_t>& bounds,
                                  uint64_t max_bytes, std::vector<size_t>* owner);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_FORMAT_SHARD_PLAN_H_
