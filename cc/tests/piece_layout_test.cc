#include "cc/format/piece_layout.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "cc/format/crc32c.h"
#include "cc/format/shard_plan.h"
#include "cc/tests/check.h"

namespace tfdata_checkpoint {
namespace {

// Entries with these piece lengths, in order.
PieceLayout Layout(const std::vector<std::vector<uint64_t>>& entries) {
  PieceLayout layout;
  layout.Reserve(entries.size(), 0);
  for (const auto& pieces : entries) {
    layout.AddEntry();
    for (uint64_t length : pieces) layout.AddPiece(length);
  }
  layout.Finish();
  return layout;
}

// What the walk must give, byte by byte: a non-empty piece's bytes inside
// [begin, end); an empty piece if its position is inside, or at the very end
// of the last range.
std::vector<Segment> Expected(const PieceLayout& layout, uint64_t begin, uint64_t end,
                              bool last_range) {
  std::vector<Segment> out;
  for (size_t p = 0; p < layout.num_pieces(); ++p) {
    const uint64_t start = layout.start(p), piece_end = layout.end(p);
    if (start == piece_end) {
      if ((start >= begin && start < end) || (last_range && start == end)) {
        out.push_back({p, 0, 0});
      }
      continue;
    }
    const uint64_t from = std::max(begin, start), to = std::min(end, piece_end);
    if (from < to) out.push_back({p, from - start, to - from});
  }
  return out;
}

bool Same(const std::vector<Segment>& a, const std::vector<Segment>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].piece != b[i].piece || a[i].piece_offset != b[i].piece_offset ||
        a[i].length != b[i].length) {
      return false;
    }
  }
  return true;
}

TFDC_TEST(LayoutKnowsWherePiecesAndEntriesAre) {
  // Entry 1 has no pieces; entry 2 has an empty one.
  const PieceLayout layout = Layout({{3, 5}, {}, {0, 2}});
  CHECK_EQ_VAL(layout.num_pieces(), size_t{4});
  CHECK_EQ_VAL(layout.total_bytes(), uint64_t{10});
  CHECK_EQ_VAL(layout.start(0), uint64_t{0});
  CHECK_EQ_VAL(layout.start(1), uint64_t{3});
  CHECK_EQ_VAL(layout.end(1), uint64_t{8});
  CHECK_EQ_VAL(layout.length(2), uint64_t{0});
  CHECK_EQ_VAL(layout.length(3), uint64_t{2});
  CHECK_EQ_VAL(layout.EntryOf(0), size_t{0});
  CHECK_EQ_VAL(layout.EntryOf(1), size_t{0});
  CHECK_EQ_VAL(layout.EntryOf(2), size_t{2});
  CHECK_EQ_VAL(layout.EntryOf(3), size_t{2});
  CHECK_EQ_VAL(layout.first_piece(1), size_t{2});
  CHECK_EQ_VAL(layout.first_piece(2), size_t{2});
  CHECK_EQ_VAL(layout.first_piece(3), size_t{4});
  CHECK_EQ_VAL(layout.FirstEndingAtOrAfter(3), size_t{0});
  CHECK_EQ_VAL(layout.FirstEndingAtOrAfter(4), size_t{1});
  CHECK_EQ_VAL(layout.FirstEndingAtOrAfter(8), size_t{1});
  CHECK_EQ_VAL(layout.FirstEndingAtOrAfter(11), size_t{4});
}

TFDC_TEST(EmptyLayout) {
  const PieceLayout layout = Layout({});
  CHECK_EQ_VAL(layout.num_pieces(), size_t{0});
  CHECK_EQ_VAL(layout.total_bytes(), uint64_t{0});
  CHECK_TRUE(SegmentsIn(layout, 0, 0, /*last_range=*/true).empty());
}

TFDC_TEST(EmptyPiecesBelongToOneRange) {
  // Pieces: [0,2) empty@2 [2,4) empty@4; ranges [0,2) [2,4).
  const PieceLayout layout = Layout({{2, 0}, {2, 0}});
  const std::vector<Segment> first = SegmentsIn(layout, 0, 2, false);
  const std::vector<Segment> second = SegmentsIn(layout, 2, 4, true);
  CHECK_EQ_VAL(first.size(), size_t{1});
  CHECK_EQ_VAL(second.size(), size_t{3});
  CHECK_EQ_VAL(second[0].piece, size_t{1});
  CHECK_EQ_VAL(second[2].piece, size_t{3});
  // The empty piece at the very end is nobody's unless the range is last.
  CHECK_EQ_VAL(SegmentsIn(layout, 2, 4, false).size(), size_t{2});
}

TFDC_TEST(WalkMatchesTheByteRule) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<std::vector<uint64_t>> entries(rng() % 6);
    for (auto& pieces : entries) {
      pieces.resize(rng() % 5);
      for (uint64_t& p : pieces) p = (rng() % 3 == 0) ? 0 : rng() % 50;
    }
    const PieceLayout layout = Layout(entries);
    std::vector<uint64_t> bounds;
    CHECK_TRUE(PlanShards(layout.total_bytes(), 1 + rng() % 9, &bounds).ok());
    for (size_t r = 0; r + 1 < bounds.size(); ++r) {
      const bool last = r + 2 == bounds.size();
      CHECK_TRUE(Same(SegmentsIn(layout, bounds[r], bounds[r + 1], last),
                      Expected(layout, bounds[r], bounds[r + 1], last)));
    }
  }
}

// Writes random pieces range by range as the writer does and checks that the
// range CRCs and the whole and joined piece CRCs are those of the bytes.
TFDC_TEST(RangeAndPieceCrcsAreThoseOfTheBytes) {
  std::mt19937_64 rng(11);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint64_t> sizes(1 + rng() % 20);
    for (uint64_t& s : sizes) s = (rng() % 4 == 0) ? 0 : rng() % 300;
    const PieceLayout layout = Layout({sizes});
    std::string stream(layout.total_bytes(), '\0');
    for (char& c : stream) c = static_cast<char>(rng());
    std::vector<uint64_t> bounds;
    CHECK_TRUE(PlanShards(layout.total_bytes(), 1 + rng() % 12, &bounds).ok());

    std::vector<uint32_t> piece_crc(layout.num_pieces(), 0);
    std::vector<int> whole_or_joined(layout.num_pieces(), 0);
    std::vector<RangeCrcs> ranges(bounds.size() - 1);
    for (size_t r = 0; r < ranges.size(); ++r) {
      SegmentWalk walk(layout, bounds[r], bounds[r + 1], r + 1 == ranges.size());
      for (Segment seg; walk.Next(&seg);) {
        const uint32_t crc = Crc32c(
            absl::string_view(stream).substr(layout.start(seg.piece) + seg.piece_offset,
                                             seg.length));
        if (ranges[r].Add(layout, seg, crc)) {
          piece_crc[seg.piece] = crc;
          ++whole_or_joined[seg.piece];
        }
      }
      CHECK_TRUE(ranges[r].crc() ==
                 Crc32c(absl::string_view(stream).substr(bounds[r],
                                                         bounds[r + 1] - bounds[r])));
    }
    size_t last_joined = 0;
    bool in_order = true;
    PartJoiner joiner(layout, [&](size_t piece, uint32_t crc) {
      if (piece < last_joined) in_order = false;
      last_joined = piece;
      piece_crc[piece] = crc;
      ++whole_or_joined[piece];
    });
    for (const RangeCrcs& range : ranges) joiner.Add(range.parts());
    joiner.Finish();
    CHECK_TRUE(in_order);
    for (size_t p = 0; p < layout.num_pieces(); ++p) {
      CHECK_EQ_VAL(whole_or_joined[p], 1);
      CHECK_TRUE(piece_crc[p] ==
                 Crc32c(absl::string_view(stream).substr(layout.start(p), layout.length(p))));
    }
  }
}

TFDC_TEST(JoinerHandsOverAPieceWhoseLastPartIsMissing) {
  const PieceLayout layout = Layout({{10, 4}});
  std::vector<size_t> joined;
  PartJoiner joiner(layout, [&](size_t piece, uint32_t) { joined.push_back(piece); });
  joiner.Add({{0, 0, 3}, {0, 0, 3}});
  CHECK_TRUE(joined.empty());
  joiner.Add({{1, 0, 2}});  // Piece 0 never got its last 4 bytes.
  CHECK_EQ_VAL(joined.size(), size_t{1});
  joiner.Finish();
  CHECK_EQ_VAL(joined.size(), size_t{2});
  CHECK_EQ_VAL(joined[1], size_t{1});
}

}  // namespace
}  // namespace tfdata_checkpoint

TFDC_TEST_MAIN()
