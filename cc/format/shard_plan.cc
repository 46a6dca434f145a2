#include "cc/format/shard_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace tfdata_checkpoint {

int64_t AutoShardCount(uint64_t total_bytes, int num_io_threads) {
  const int64_t by_size =
      static_cast<int64_t>((total_bytes + kTargetShardBytes - 1) / kTargetShardBytes);
  const int64_t cap = std::max<int64_t>(1, 4 * static_cast<int64_t>(num_io_threads));
  return std::clamp<int64_t>(by_size, 1, cap);
}

absl::Status PlanShards(uint64_t total_bytes, int64_t num_shards,
                        std::vector<uint64_t>* bounds) {
  if (num_shards < 1 || num_shards > kMaxShards) {
    return absl::InvalidArgumentError(absl::StrCat(
        "num_shards must be between 1 and ", kMaxShards, ", got ", num_shards));
  }
  bounds->resize(num_shards + 1);
  const uint64_t n = static_cast<uint64_t>(num_shards);
  const uint64_t base = total_bytes / n;
  const uint64_t extra = total_bytes % n;
  uint64_t pos = 0;
  for (uint64_t s = 0; s < n; ++s) {
    (*bounds)[s] = pos;
    pos += base + (s < extra ? 1 : 0);
  }
  (*bounds)[n] = pos;
  return absl::OkStatus();
}

size_t RangeHolding(const std::vector<uint64_t>& bounds, uint64_t pos) {
  // Among the ends of all ranges but the last, the first one past `pos`.
  return std::upper_bound(bounds.begin() + 1, bounds.end() - 1, pos) - (bounds.begin() + 1);
}

std::vector<uint64_t> SplitRanges(const std::vector<uint64_t>& bounds,
                                  uint64_t max_bytes, std::vector<size_t>* owner) {
  std::vector<uint64_t> out;
  owner->clear();
  if (bounds.empty()) return out;
  max_bytes = std::max<uint64_t>(max_bytes, 1);
  for (size_t i = 0; i + 1 < bounds.size(); ++i) {
    uint64_t pos = bounds[i];
    do {
      out.push_back(pos);
      owner->push_back(i);
      pos = std::min(bounds[i + 1], pos + max_bytes);
    } while (pos < bounds[i + 1]);
  }
  out.push_back(bounds.back());
  return out;
}

}  // namespace tfdata_checkpoint
