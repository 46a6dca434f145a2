#include "cc/format/piece_layout.h"

#include <algorithm>

#include "cc/format/crc32c.h"

namespace tfdata_checkpoint {

void PieceLayout::Reserve(size_t num_entries, size_t num_pieces) {
  first_piece_.reserve(num_entries + 1);
  end_.reserve(num_pieces);
}

size_t PieceLayout::EntryOf(size_t p) const {
  // The last entry that starts at or before p: entries without pieces start
  // where the next one does and are skipped.
  return std::upper_bound(first_piece_.begin(), first_piece_.end(), p) -
         first_piece_.begin() - 1;
}

size_t PieceLayout::FirstEndingAtOrAfter(uint64_t pos) const {
  return std::lower_bound(end_.begin(), end_.end(), pos) - end_.begin();
}

SegmentWalk::SegmentWalk(const PieceLayout& layout, uint64_t begin, uint64_t end,
                         bool last_range)
    : layout_(layout), begin_(begin), end_(end), last_range_(last_range) {
  // An empty piece at `begin` is this range's too.
  piece_ = layout.FirstEndingAtOrAfter(begin);
}

bool SegmentWalk::Next(Segment* segment) {
  while (piece_ < layout_.num_pieces()) {
    const size_t p = piece_;
    const uint64_t start = layout_.start(p);
    const uint64_t piece_end = layout_.end(p);
    const bool empty = piece_end == start;
    // Past the range; a piece at its very end is the next range's, unless
    // this is the last range and the piece is empty.
    if (start > end_ || (start == end_ && !(last_range_ && empty))) {
      piece_ = layout_.num_pieces();
      return false;
    }
    ++piece_;
    if (empty) {
      *segment = {p, 0, 0};
      return true;
    }
    if (piece_end <= begin_) continue;  // Ends where the range begins.
    const uint64_t from = std::max(begin_, start);
    *segment = {p, from - start, std::min(end_, piece_end) - from};
    return true;
  }
  return false;
}

std::vector<Segment> SegmentsIn(const PieceLayout& layout, uint64_t begin, uint64_t end,
                                bool last_range) {
  std::vector<Segment> segments;
  SegmentWalk walk(layout, begin, end, last_range);
  for (Segment segment; walk.Next(&segment);) segments.push_back(segment);
  return segments;
}

std::vector<std::vector<Segment>> SegmentsByRange(
    const std::vector<uint64_t>& piece_sizes, const std::vector<uint64_t>& bounds) {
  const size_t num_ranges = bounds.empty() ? 0 : bounds.size() - 1;
  std::vector<std::vector<Segment>> out(num_ranges);
  PieceLayout layout;
  layout.Reserve(1, piece_sizes.size());
  layout.AddEntry();
  for (uint64_t size : piece_sizes) layout.AddPiece(size);
  layout.Finish();
  for (size_t r = 0; r < num_ranges; ++r) {
    out[r] = SegmentsIn(layout, bounds[r], bounds[r + 1], r + 1 == num_ranges);
  }
  return out;
}

bool RangeCrcs::Add(uint64_t piece_length, const Segment& segment, uint32_t crc) {
  crc_ = Crc32cConcat(crc_, crc, segment.length);
  if (segment.length == piece_length) return true;
  parts_.push_back({segment.piece, crc, segment.length});
  return false;
}

void PartJoiner::Add(const std::vector<PiecePart>& parts) {
  for (const PiecePart& part : parts) {
    if (part.piece != open_piece_) {
      Close();
      open_piece_ = part.piece;
      open_crc_ = 0;
      open_length_ = 0;
    }
    open_crc_ = Crc32cConcat(open_crc_, part.crc, part.length);
    open_length_ += part.length;
    if (open_length_ == length_(part.piece)) Close();
  }
}

void PartJoiner::Finish() { Close(); }

void PartJoiner::Close() {
  if (open_piece_ == kNone) return;
  const size_t piece = open_piece_;
  open_piece_ = kNone;
  joined_(piece, open_crc_);
}

}  // namespace tfdata_checkpoint
