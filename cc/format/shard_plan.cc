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

std::vector<std::vector<Segment>> SegmentsByRange(
    const std::vector<uint64_t>& piece_sizes, const std::vector<uint64_t>& bounds) {
  const size_t num_ranges = bounds.empty() ? 0 : bounds.size() - 1;
  std::vector<std::vector<Segment>> out(num_ranges);
  if (num_ranges == 0) return out;
  size_t range = 0;
  uint64_t pos = 0;
  for (size_t p = 0; p < piece_sizes.size(); ++p) {
    uint64_t done = 0;
    const uint64_t size = piece_sizes[p];
    // A piece starts in the first range that ends after its position (an
    // empty piece at the very end goes to the last range).
    while (range + 1 < num_ranges && bounds[range + 1] <= pos) ++range;
    if (size == 0) {
      out[range].push_back({p, 0, 0});
      continue;
    }
    while (done < size) {
      while (range + 1 < num_ranges && bounds[range + 1] <= pos) ++range;
      const uint64_t room = bounds[range + 1] - pos;
      const uint64_t take = std::min(room, size - done);
      out[range].push_back({p, done, take});
      done += take;
      pos += take;
    }
  }
  return out;
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
