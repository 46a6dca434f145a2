#include "cc/format/shard_plan.h"

#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "cc/format/piece_layout.h"
#include "cc/tests/check.h"

namespace tfdata_checkpoint {
namespace {

// Every byte of every piece must appear exactly once, in stream order, inside
// the range that holds it.
void CheckCovers(const std::vector<uint64_t>& pieces, const std::vector<uint64_t>& bounds) {
  const auto segments = SegmentsByRange(pieces, bounds);
  CHECK_EQ_VAL(segments.size(), bounds.size() - 1);
  std::vector<uint64_t> next_offset(pieces.size(), 0);
  std::vector<int> seen(pieces.size(), 0);
  uint64_t pos = 0;
  size_t last_piece = 0;
  for (size_t r = 0; r < segments.size(); ++r) {
    uint64_t range_bytes = 0;
    for (const Segment& seg : segments[r]) {
      CHECK_TRUE(seg.piece >= last_piece);
      last_piece = seg.piece;
      CHECK_EQ_VAL(seg.piece_offset, next_offset[seg.piece]);
      next_offset[seg.piece] += seg.length;
      ++seen[seg.piece];
      CHECK_TRUE(pos >= bounds[r] && pos + seg.length <= bounds[r + 1]);
      pos += seg.length;
      range_bytes += seg.length;
    }
    CHECK_EQ_VAL(range_bytes, bounds[r + 1] - bounds[r]);
  }
  for (size_t p = 0; p < pieces.size(); ++p) {
    CHECK_EQ_VAL(next_offset[p], pieces[p]);
    CHECK_TRUE(seen[p] >= 1);
  }
}

TFDC_TEST(PlanIsByteBalanced) {
  std::vector<uint64_t> bounds;
  CHECK_TRUE(PlanShards(10, 3, &bounds).ok());
  CHECK_EQ_VAL(bounds.size(), size_t{4});
  CHECK_EQ_VAL(bounds[0], uint64_t{0});
  CHECK_EQ_VAL(bounds[1], uint64_t{4});
  CHECK_EQ_VAL(bounds[2], uint64_t{7});
  CHECK_EQ_VAL(bounds[3], uint64_t{10});
}

TFDC_TEST(PlanRejectsBadShardCounts) {
  std::vector<uint64_t> bounds;
  CHECK_TRUE(!PlanShards(10, 0, &bounds).ok());
  CHECK_TRUE(!PlanShards(10, -1, &bounds).ok());
  CHECK_TRUE(!PlanShards(10, kMaxShards + 1, &bounds).ok());
}

TFDC_TEST(MoreShardsThanBytes) {
  std::vector<uint64_t> bounds;
  CHECK_TRUE(PlanShards(3, 8, &bounds).ok());
  CHECK_EQ_VAL(bounds.back(), uint64_t{3});
  CheckCovers({1, 0, 2}, bounds);
}

TFDC_TEST(EmptyStream) {
  std::vector<uint64_t> bounds;
  CHECK_TRUE(PlanShards(0, 1, &bounds).ok());
  CheckCovers({}, bounds);
  CheckCovers({0, 0}, bounds);
  const auto segments = SegmentsByRange({0, 0}, bounds);
  CHECK_EQ_VAL(segments[0].size(), size_t{2});
}

TFDC_TEST(OnePieceSpansAllShards) {
  std::vector<uint64_t> bounds;
  CHECK_TRUE(PlanShards(1000, 7, &bounds).ok());
  CheckCovers({1000}, bounds);
  const auto segments = SegmentsByRange({1000}, bounds);
  for (const auto& range : segments) CHECK_EQ_VAL(range.size(), size_t{1});
}

TFDC_TEST(EmptyPiecesLandInTheRangeOfTheirPosition) {
  std::vector<uint64_t> bounds;
  CHECK_TRUE(PlanShards(4, 2, &bounds).ok());  // [0,2) [2,4)
  const auto segments = SegmentsByRange({2, 0, 2, 0}, bounds);
  CHECK_EQ_VAL(segments[0].size(), size_t{1});
  CHECK_EQ_VAL(segments[1].size(), size_t{3});
  CHECK_EQ_VAL(segments[1][0].piece, size_t{1});
  CHECK_EQ_VAL(segments[1][2].piece, size_t{3});
}

TFDC_TEST(RandomLayoutsAreCovered) {
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 500; ++trial) {
    std::vector<uint64_t> pieces(rng() % 40);
    for (uint64_t& p : pieces) p = (rng() % 4 == 0) ? 0 : rng() % 5000;
    const uint64_t total = std::accumulate(pieces.begin(), pieces.end(), uint64_t{0});
    std::vector<uint64_t> bounds;
    CHECK_TRUE(PlanShards(total, 1 + rng() % 12, &bounds).ok());
    CheckCovers(pieces, bounds);
    std::vector<size_t> owner;
    const std::vector<uint64_t> split = SplitRanges(bounds, 1 + rng() % 3000, &owner);
    CHECK_EQ_VAL(owner.size(), split.size() - 1);
    for (size_t r = 0; r + 1 < split.size(); ++r) {
      CHECK_TRUE(split[r] >= bounds[owner[r]] && split[r + 1] <= bounds[owner[r] + 1]);
    }
    CheckCovers(pieces, split);
  }
}

// RangeHolding is the rule the writer records a tensor's shard by and the
// reader names a damaged tensor's shard by: the first range ending after it.
TFDC_TEST(RangeHoldingIsTheFirstRangeEndingAfterThePosition) {
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<uint64_t> bounds;
    CHECK_TRUE(PlanShards(rng() % 40, 1 + rng() % 12, &bounds).ok());
    for (uint64_t pos = 0; pos <= bounds.back(); ++pos) {
      size_t expected = 0;
      while (expected + 2 < bounds.size() && bounds[expected + 1] <= pos) ++expected;
      CHECK_EQ_VAL(RangeHolding(bounds, pos), expected);
    }
  }
  CHECK_EQ_VAL(RangeHolding({0, 2, 2, 4}, 2), size_t{2});
  CHECK_EQ_VAL(RangeHolding({0, 0}, 0), size_t{0});
}

TFDC_TEST(AutoShardCountFollowsSize) {
  CHECK_EQ_VAL(AutoShardCount(0, 4), int64_t{1});
  CHECK_EQ_VAL(AutoShardCount(kTargetShardBytes, 4), int64_t{1});
  CHECK_EQ_VAL(AutoShardCount(kTargetShardBytes + 1, 4), int64_t{2});
  CHECK_EQ_VAL(AutoShardCount(1000 * kTargetShardBytes, 4), int64_t{16});
}

}  // namespace
}  // namespace tfdata_checkpoint

TFDC_TEST_MAIN()
