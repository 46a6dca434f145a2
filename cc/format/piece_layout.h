// The byte stream of a checkpoint as the writer lays it out and the reader
// finds it again: pieces (one per tensor or inline int64 scalar) end to end,
// entry after entry. Shards, and the ranges a shard is read in, cut this
// stream at any byte, so a piece may cross them: both sides then checksum the
// piece's parts range by range and join the CRCs afterwards (PartJoiner).
// Writer and reader share this so that they cannot disagree on where a piece
// starts, which range holds an empty one, or what a piece's CRC covers.
#ifndef TFDATA_CHECKPOINT_CC_FORMAT_PIECE_LAYOUT_H_
#define TFDATA_CHECKPOINT_CC_FORMAT_PIECE_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>


namespace tfdata_checkpoint {

// The part of piece `piece` (bytes [piece_offset, piece_offset + length) of
// that piece) that falls into one range.
struct Segment {
  size_t piece;
  uint64_t piece_offset;
  uint64_t length;
};

// Where each piece ends, and which pieces belong to which entry. Only that
// is stored per piece: a buffer of many small elements must not cost a
// record per piece while it is written or read.
class PieceLayout {
 public:
  // Room for `num_entries` entries and `num_pieces` pieces, so that building
  // does not reallocate (a vector that grows by doubling leaves its old
  // buffers in the heap, and in the peak memory of a restore).
  void Reserve(size_t num_entries, size_t num_pieces);
  // Building, in stream order: each entry, then its pieces; Finish once after
  // the last entry.
  void AddEntry() { first_piece_.push_back(end_.size()); }
  void AddPiece(uint64_t length) { end_.push_back(total_bytes() + length); }
  void Finish() { first_piece_.push_back(end_.size()); }

  size_t num_pieces() const { return end_.size(); }
  uint64_t total_bytes() const { return end_.empty() ? 0 : end_.back(); }
  uint64_t start(size_t p) const { return p == 0 ? 0 : end_[p - 1]; }
  uint64_t end(size_t p) const { return end_[p]; }
  uint64_t length(size_t p) const { return end(p) - start(p); }

  // After Finish: entry e's pieces are [first_piece(e), first_piece(e + 1)).
  size_t first_piece(size_t e) const { return first_piece_[e]; }
  // The entry piece `p` belongs to (entries without pieces never are).
  size_t EntryOf(size_t p) const;
  // The first piece that ends at or after `pos` (num_pieces() if none).
  size_t FirstEndingAtOrAfter(uint64_t pos) const;

 private:
  std::vector<uint64_t> end_;
  std::vector<size_t> first_piece_;  // Per entry, plus the total after Finish.
};

// Walks the segments of the pieces that overlap the range [begin, end) of the
// stream, in stream order. An empty piece belongs to the range that holds its
// position, and the last range (`last_range`) also holds the empty pieces at
// the very end, so that every empty piece is in exactly one range.
class SegmentWalk {
 public:
  SegmentWalk(const PieceLayout& layout, uint64_t begin, uint64_t end, bool last_range);
  // The next segment; false when there is none.
  bool Next(Segment* segment);

 private:
  const PieceLayout& layout_;
  uint64_t begin_;
  uint64_t end_;
  bool last_range_;
  size_t piece_;
};

// All segments of [begin, end), as SegmentWalk gives them.
std::vector<Segment> SegmentsIn(const PieceLayout& layout, uint64_t begin, uint64_t end,
                                bool last_range);

// Pieces of `piece_sizes` lie end to end from byte 0. `bounds` (ascending,
// first 0, last the total) cuts that stream into ranges; returns, per range,
// the segments it holds in stream order (as SegmentWalk).
std::vector<std::vector<Segment>> SegmentsByRange(
    const std::vector<uint64_t>& piece_sizes, const std::vector<uint64_t>& bounds);

// The CRC32C of the part of a piece that lies in one range.
struct PiecePart {
  size_t piece;
  uint32_t crc;
  uint64_t length;
};

// The checksums of one range, segment by segment as it is read or written:
// the CRC of the range's bytes so far, and the parts of the pieces that cross
// its bounds. The CRC of a piece that lies wholly in the range is the
// caller's to check or keep.
class RangeCrcs {
 public:
  // Adds the CRC of `segment`'s bytes, the segment after the last one added.
  // Returns true when the segment is its whole piece (`crc` is then that
  // piece's CRC); otherwise the part is kept for PartJoiner.
  bool Add(const PieceLayout& layout, const Segment& segment, uint32_t crc) {
    return Add(layout.length(segment.piece), segment, crc);
  }
  // The same, for a piece of `piece_length` bytes that is in no PieceLayout
  // (a referenced tensor of an incremental checkpoint).
  bool Add(uint64_t piece_length, const Segment& segment, uint32_t crc);

  uint32_t crc() const { return crc_; }
  const std::vector<PiecePart>& parts() const { return parts_; }

 private:
  uint32_t crc_ = 0;
  std::vector<PiecePart> parts_;
};

// Joins the parts of the pieces that cross ranges into each such piece's
// CRC. Parts come range after range in stream order (each range's parts()).
// `joined(piece, crc)` is called once per piece, in order, when its last part
// has come (or at Finish, for a piece whose parts did not all come).
class PartJoiner {
 public:
  PartJoiner(const PieceLayout& layout, std::function<void(size_t piece, uint32_t crc)> joined)
      : length_([&layout](size_t piece) { return layout.length(piece); }),
        joined_(std::move(joined)) {}
  // Pieces whose lengths `length(piece)` gives.
  PartJoiner(std::function<uint64_t(size_t piece)> length,
             std::function<void(size_t piece, uint32_t crc)> joined)
      : length_(std::move(length)), joined_(std::move(joined)) {}

  void Add(const std::vector<PiecePart>& parts);
  void Finish();

 private:
  static constexpr size_t kNone = SIZE_MAX;
  void Close();

  std::function<uint64_t(size_t)> length_;
  std::function<void(size_t, uint32_t)> joined_;
  size_t open_piece_ = kNone;
  uint32_t open_crc_ = 0;
  uint64_t open_length_ = 0;
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_FORMAT_PIECE_LAYOUT_H_
