#include "cc/io/range_reader.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "cc/format/crc32c.h"
#include "cc/format/shard_plan.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/parallel.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/platform/file_system.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::Env;
using tensorflow::RandomAccessFile;

// Reads are cut into ranges of at most this size so that even a checkpoint
// with one shard is read by several threads.
constexpr uint64_t kReadRangeBytes = 32ull << 20;
// Segments smaller than this are read in batches through a staging buffer.
constexpr uint64_t kDirectReadBytes = 256 << 10;
constexpr uint64_t kStagingBytes = 2ull << 20;  // Per IO thread: counts in peak memory.
// Referenced pieces at most this far apart in a shard file are read in one
// go, the bytes between them read and dropped: one read per staging buffer
// instead of one per piece (the elements of a shuffle buffer are never
// adjacent in a shard: an own-stream scalar, or a consumed element, lies
// between any two).
constexpr uint64_t kReadThroughGapBytes = 64 << 10;
// The piece of a segment that covers such a gap: its bytes go nowhere.
constexpr size_t kGapPiece = std::numeric_limits<size_t>::max();

struct RangeResult {
  absl::Status status;
  // Pieces that lie wholly in the range are checked there; the parts of
  // pieces that cross ranges are joined afterwards.
  RangeCrcs crcs;
  int64_t bad_piece = -1;  // First whole piece whose CRC did not match.
};

absl::Status ReadExactly(RandomAccessFile* file, const std::string& path,
                         uint64_t offset, uint64_t n, char* dst) {
  while (n > 0) {
    absl::string_view result;
    const size_t want = static_cast<size_t>(std::min<uint64_t>(n, 1ull << 30));
    absl::Status s = file->Read(offset, want, &result, dst);
    if (result.size() < want && (s.ok() || absl::IsOutOfRange(s))) {
      return absl::DataLossError(absl::StrCat(
          "Shard ", path, " is truncated: reading ", want, " bytes at offset ",
          offset, " returned ", result.size()));
    }
    if (!s.ok() && !absl::IsOutOfRange(s)) return Annotate(s, "reading", path);
    // Some filesystems hand back their own buffer instead of filling ours.
    if (result.data() != dst) std::memmove(dst, result.data(), result.size());
    offset += want;
    dst += want;
    n -= want;
  }
  return absl::OkStatus();
}

// The pieces a range reader fills: the own stream's...
class OwnPieces {
 public:
  explicit OwnPieces(const ReadLayout& layout) : layout_(layout) {}
  uint64_t length(size_t p) const { return layout_.pieces.length(p); }
  uint32_t crc(size_t p) const { return layout_.crc[p]; }
  char* destination(size_t p) const { return layout_.destination[p]; }

 private:
  const ReadLayout& layout_;
};

// ... or the referenced ones (segments then index ReadLayout::referenced).
class ReferencedPieces {
 public:
  explicit ReferencedPieces(const ReadLayout& layout) : pieces_(layout.referenced) {}
  uint64_t length(size_t p) const { return pieces_[p].length; }
  uint32_t crc(size_t p) const { return pieces_[p].crc; }
  char* destination(size_t p) const { return pieces_[p].destination; }

 private:
  const std::vector<ReferencedPiece>& pieces_;
};

template <typename Pieces>
class RangeReader {
 public:
  RangeReader(RandomAccessFile* file, const std::string& path, uint64_t file_offset,
              const Pieces& pieces)
      : file_(file), path_(path), file_offset_(file_offset), pieces_(pieces) {}

  // Moves to `file_offset`: the next segments are read from there.
  void Seek(uint64_t file_offset) { file_offset_ = file_offset; }

  // Reads the segments, which lie end to end from file_offset_.
  absl::Status Read(absl::Span<const Segment> segments, RangeResult* result) {
    size_t i = 0;
    while (i < segments.size()) {
      const Segment& seg = segments[i];
      if (seg.length >= kDirectReadBytes && seg.piece != kGapPiece &&
          pieces_.destination(seg.piece) != nullptr) {
        char* dst = pieces_.destination(seg.piece) + seg.piece_offset;
        if (absl::Status s = ReadExactly(file_, path_, file_offset_, seg.length, dst);
            !s.ok()) {
          return s;
        }
        Record(seg, Crc32c(absl::string_view(dst, seg.length)), result);
        file_offset_ += seg.length;
        ++i;
        continue;
      }
      // Either one large segment that is only verified, or a run of small
      // segments that fits the staging buffer.
      size_t end = i + 1;
      uint64_t batch = seg.length;
      if (seg.length < kDirectReadBytes) {
        while (end < segments.size() && segments[end].length < kDirectReadBytes &&
               batch + segments[end].length <= kStagingBytes) {
          batch += segments[end].length;
          ++end;
        }
      }
      if (absl::Status s = ReadBatch(segments, i, end, batch, result); !s.ok()) return s;
      i = end;
    }
    return absl::OkStatus();
  }

 private:
  // Reads `batch` bytes through the staging buffer and hands them out to
  // segments [begin, end).
  absl::Status ReadBatch(absl::Span<const Segment> segments, size_t begin,
                         size_t end, uint64_t batch, RangeResult* result) {
    size_t i = begin;
    uint64_t consumed = 0;  // Of segments[i].
    uint32_t crc = 0;
    auto record_empty = [&] {
      while (i < end && segments[i].length == 0) Record(segments[i++], crc, result);
    };
    record_empty();
    for (uint64_t remaining = batch; remaining > 0;) {
      const uint64_t n = std::min<uint64_t>(remaining, kStagingBytes);
      if (staging_.size() < n) staging_.resize(n);
      if (absl::Status s = ReadExactly(file_, path_, file_offset_, n, staging_.data());
          !s.ok()) {
        return s;
      }
      file_offset_ += n;
      remaining -= n;
      for (uint64_t pos = 0; pos < n;) {
        const Segment& seg = segments[i];
        const uint64_t take = std::min(seg.length - consumed, n - pos);
        const char* src = staging_.data() + pos;
        const absl::string_view bytes(src, take);
        if (seg.piece != kGapPiece) {
          char* dst = pieces_.destination(seg.piece);
          crc = dst != nullptr ? Crc32cCopy(dst + seg.piece_offset + consumed, bytes, crc)
                               : Crc32cExtend(crc, bytes);
        }
        consumed += take;
        pos += take;
        if (consumed == seg.length) {
          Record(seg, crc, result);
          crc = 0;
          consumed = 0;
          ++i;
          record_empty();
        }
      }
    }
    return absl::OkStatus();
  }

  void Record(const Segment& seg, uint32_t crc, RangeResult* result) {
    if (seg.piece == kGapPiece) return;
    if (result->crcs.Add(pieces_.length(seg.piece), seg, crc) && crc != pieces_.crc(seg.piece) &&
        result->bad_piece < 0) {
      result->bad_piece = static_cast<int64_t>(seg.piece);
    }
  }

  RandomAccessFile* file_;
  const std::string& path_;
  uint64_t file_offset_;
  const Pieces& pieces_;
  std::string staging_;
};

// The path of every shard, once each is known to exist with the size the
// index gives it: a short or missing shard is named before any byte is read.
absl::Status CheckShardFile(const std::string& prefix, const std::string& path,
                            uint64_t expected_size) {
  Env* env = Env::Default();
  uint64_t size = 0;
  absl::Status st = env->GetFileSize(path, &size);
  if (absl::IsNotFound(st) || absl::IsNotFound(env->FileExists(path))) {
    return absl::NotFoundError(
        absl::StrCat("Shard ", path, " of checkpoint ", prefix, " is missing"));
  }
  if (!st.ok()) return Annotate(st, "reading", path);
  if (size != expected_size) {
    return absl::DataLossError(absl::StrCat("Shard ", path, " has ", size,
                                            " bytes; the index says ", expected_size));
  }
  return absl::OkStatus();
}

absl::Status CheckShardFiles(const std::string& prefix, const CheckpointIndex& index,
                             std::vector<std::string>* paths) {
  const size_t num_shards = index.shards.size();
  paths->resize(num_shards);
  for (size_t s = 0; s < num_shards; ++s) {
    const std::string& path = (*paths)[s] = ShardPath(prefix, index.shards[s].name);
    if (absl::Status st = CheckShardFile(prefix, path, index.shards[s].size); !st.ok()) {
      return st;
    }
  }
  return absl::OkStatus();
}

// The shards cut into read ranges: range r is [bounds[r], bounds[r + 1]) of
// the stream, in shard owner[r].
struct ReadRanges {
  std::vector<uint64_t> shard_starts;
  std::vector<uint64_t> bounds;
  std::vector<size_t> owner;

  explicit ReadRanges(const CheckpointIndex& index) : shard_starts(ShardStarts(index)) {
    bounds = SplitRanges(shard_starts, kReadRangeBytes, &owner);
  }
  size_t size() const { return owner.size(); }
};

// The referenced pieces cut into read tasks: runs of pieces adjacent in their
// stream (or at most kReadThroughGapBytes apart: the gap is read and
// dropped), split at shard bounds, and the runs of one shard file gathered
// into tasks of up to kReadRangeBytes, read in file order. Reading through
// small gaps makes one read of a staging buffer serve many pieces, however
// scattered (a shuffle buffer's elements are never adjacent: an int64 scalar
// of the own stream lies between any two); gathering keeps the reads of a
// task sequential (the kernel's readahead then works as for a whole shard).
struct ReferencedRun {
  uint64_t file_offset;
  size_t first_segment;  // Its segments, end to end from file_offset, are
                         // [first_segment, the next run's first_segment).
};

struct ReferencedRange {
  uint32_t stream;  // >= 1.
  uint32_t shard;
  uint64_t bytes;
  std::vector<ReferencedRun> runs;
  std::vector<Segment> segments;  // Into ReadLayout::referenced.
};

struct ReferencedReads {
  // Per referenced stream (stream j at j - 1): where its shards start, and
  // the path of each shard a range reads ("" for the others).
  std::vector<std::vector<uint64_t>> starts;
  std::vector<std::vector<std::string>> paths;
  std::vector<ReferencedRange> ranges;

  const std::string& path(const ReferencedRange& range) const {
    return paths[range.stream - 1][range.shard];
  }
};

// The shard holding the first byte of a referenced piece, for messages.
const std::string& ReferencedShardPath(const std::string& prefix, const CheckpointIndex& index,
                                       const ReferencedReads& reads, const ReferencedPiece& piece,
                                       std::string* scratch) {
  const std::vector<uint64_t>& starts = reads.starts[piece.stream - 1];
  const size_t shard = RangeHolding(starts, starts[piece.shard] + piece.offset);
  *scratch = ShardPath(prefix, index.streams[piece.stream - 1].shards[shard].name);
  return *scratch;
}

absl::Status ReferencedMismatch(const std::string& prefix, const CheckpointIndex& index,
                                const ReferencedReads& reads, const ReferencedPiece& piece) {
  std::string path;
  return absl::DataLossError(absl::StrCat(
      "Checksum mismatch in tensor of entry ", piece.entry, " in shard ",
      ReferencedShardPath(prefix, index, reads, piece, &path), " of an earlier checkpoint, which ",
      "checkpoint ", prefix, " references"));
}

// Plans the reads of the referenced pieces and checks that every shard file
// they need exists with the size its index recorded.
absl::Status PlanReferencedReads(const std::string& prefix, const CheckpointIndex& index,
                                 const ReadLayout& layout, ReferencedReads* reads) {
  const std::vector<ReferencedPiece>& pieces = layout.referenced;
  if (pieces.empty()) return absl::OkStatus();
  for (const StreamRecord& stream : index.streams) {
    reads->starts.push_back(ShardStarts(stream.shards));
    reads->paths.emplace_back(stream.shards.size());
  }
  std::vector<size_t> order;
  order.reserve(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i) {
    if (pieces[i].length > 0) {
      order.push_back(i);
    } else if (pieces[i].crc != 0) {  // The CRC32C of no bytes.
      return ReferencedMismatch(prefix, index, *reads, pieces[i]);
    }
  }
  auto start_of = [&](size_t i) {
    return reads->starts[pieces[i].stream - 1][pieces[i].shard] + pieces[i].offset;
  };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return pieces[a].stream != pieces[b].stream ? pieces[a].stream < pieces[b].stream
                                                : start_of(a) < start_of(b);
  });
  uint64_t run_end = 0;  // In the file of the last range.
  for (size_t i : order) {
    const ReferencedPiece& piece = pieces[i];
    const std::vector<uint64_t>& starts = reads->starts[piece.stream - 1];
    uint64_t pos = start_of(i);
    const uint64_t end = pos + piece.length;
    uint64_t piece_offset = 0;
    while (pos < end) {
      const uint32_t shard = static_cast<uint32_t>(RangeHolding(starts, pos));
      const uint64_t file_pos = pos - starts[shard];
      ReferencedRange* range = reads->ranges.empty() ? nullptr : &reads->ranges.back();
      if (range == nullptr || range->stream != piece.stream || range->shard != shard ||
          range->bytes >= kReadRangeBytes) {
        reads->ranges.push_back({piece.stream, shard, 0, {}, {}});
        range = &reads->ranges.back();
      }
      if (!range->runs.empty() && file_pos > run_end &&
          file_pos - run_end <= kReadThroughGapBytes &&
          range->bytes + (file_pos - run_end) < kReadRangeBytes) {
        range->segments.push_back({kGapPiece, 0, file_pos - run_end});
        range->bytes += file_pos - run_end;
      } else if (range->runs.empty() || run_end != file_pos) {
        range->runs.push_back({file_pos, range->segments.size()});
      }
      const uint64_t take =
          std::min({end, starts[shard + 1], pos + (kReadRangeBytes - range->bytes)}) - pos;
      run_end = file_pos + take;
      range->segments.push_back({i, piece_offset, take});
      range->bytes += take;
      pos += take;
      piece_offset += take;
      std::string& path = reads->paths[piece.stream - 1][shard];
      if (path.empty()) {
        path = ShardPath(prefix, index.streams[piece.stream - 1].shards[shard].name);
      }
    }
  }
  for (size_t j = 0; j < reads->paths.size(); ++j) {
    const std::vector<ShardRecord>& shards = index.streams[j].shards;
    for (size_t s = 0; s < shards.size(); ++s) {
      const std::string& path = reads->paths[j][s];
      if (path.empty()) continue;
      if (absl::Status st = CheckShardFile(prefix, path, shards[s].size); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

// Reads every range, own and referenced, on the IO pool; the first failure,
// if any, is returned.
absl::Status ReadAllRanges(const std::vector<std::string>& paths, const ReadRanges& ranges,
                           const ReferencedReads& referenced, const ReadLayout& layout,
                           std::vector<RangeResult>* results,
                           std::vector<RangeResult>* referenced_results) {
  Env* env = Env::Default();
  const size_t num_ranges = ranges.size();
  results->resize(num_ranges);
  referenced_results->resize(referenced.ranges.size());
  const OwnPieces own_pieces(layout);
  const ReferencedPieces referenced_pieces(layout);
  RunInParallel(num_ranges + referenced.ranges.size(), [&](size_t task) {
    if (task >= num_ranges) {
      const ReferencedRange& range = referenced.ranges[task - num_ranges];
      RangeResult& result = (*referenced_results)[task - num_ranges];
      const std::string& path = referenced.path(range);
      std::unique_ptr<RandomAccessFile> file;
      result.status = Annotate(env->NewRandomAccessFile(path, &file), "opening", path);
      if (!result.status.ok()) return;
      RangeReader<ReferencedPieces> reader(file.get(), path, 0, referenced_pieces);
      for (size_t run = 0; run < range.runs.size() && result.status.ok(); ++run) {
        const size_t end = run + 1 < range.runs.size() ? range.runs[run + 1].first_segment
                                                       : range.segments.size();
        reader.Seek(range.runs[run].file_offset);
        result.status = reader.Read(
            absl::MakeConstSpan(range.segments)
                .subspan(range.runs[run].first_segment, end - range.runs[run].first_segment),
            &result);
      }
      return;
    }
    const size_t r = task;
    RangeResult& result = (*results)[r];
    const size_t shard = ranges.owner[r];
    const std::vector<Segment> segments =
        SegmentsIn(layout.pieces, ranges.bounds[r], ranges.bounds[r + 1],
                   /*last_range=*/r + 1 == num_ranges);
    if (segments.empty()) return;
    std::unique_ptr<RandomAccessFile> file;
    result.status =
        Annotate(env->NewRandomAccessFile(paths[shard], &file), "opening", paths[shard]);
    if (!result.status.ok()) return;
    RangeReader<OwnPieces> reader(file.get(), paths[shard],
                                  ranges.bounds[r] - ranges.shard_starts[shard], own_pieces);
    result.status = reader.Read(segments, &result);
  });
  for (const RangeResult& result : *results) {
    if (!result.status.ok()) return result.status;
  }
  for (const RangeResult& result : *referenced_results) {
    if (!result.status.ok()) return result.status;
  }
  return absl::OkStatus();
}

// Joins what the ranges found into every shard's and every piece's checksum
// and checks them against the index: a damaged shard is named first, then
// the first damaged piece with its entry.
absl::Status CheckChecksums(const std::string& prefix, const CheckpointIndex& index,
                            const std::vector<std::string>& paths, const ReadRanges& ranges,
                            const ReadLayout& layout,
                            const std::vector<RangeResult>& results) {
  const size_t num_shards = index.shards.size();
  std::vector<uint32_t> shard_crcs(num_shards, 0);
  int64_t bad_piece = -1;
  PartJoiner joiner(layout.pieces, [&](size_t piece, uint32_t crc) {
    if (bad_piece < 0 && crc != layout.crc[piece]) bad_piece = static_cast<int64_t>(piece);
  });
  for (size_t r = 0; r < ranges.size(); ++r) {
    const size_t shard = ranges.owner[r];
    const uint64_t length = ranges.bounds[r + 1] - ranges.bounds[r];
    shard_crcs[shard] = Crc32cConcat(shard_crcs[shard], results[r].crcs.crc(), length);
    if (results[r].bad_piece >= 0 && (bad_piece < 0 || results[r].bad_piece < bad_piece)) {
      bad_piece = results[r].bad_piece;
    }
    joiner.Add(results[r].crcs.parts());
  }
  joiner.Finish();
  for (size_t s = 0; s < num_shards; ++s) {
    if (shard_crcs[s] != index.shards[s].crc32c) {
      return absl::DataLossError(
          absl::StrCat("Checksum mismatch in shard ", paths[s], " of checkpoint ", prefix));
    }
  }
  if (bad_piece >= 0) {
    const size_t shard = RangeHolding(ranges.shard_starts, layout.pieces.start(bad_piece));
    return absl::DataLossError(absl::StrCat("Checksum mismatch in tensor of entry ",
                                            layout.pieces.EntryOf(bad_piece), " in shard ",
                                            paths[shard], " of checkpoint ", prefix));
  }
  return absl::OkStatus();
}

// The same for the referenced pieces (no shard CRC: those shards are read
// only in parts). Parts of a piece come from consecutive ranges, in order.
absl::Status CheckReferencedChecksums(const std::string& prefix, const CheckpointIndex& index,
                                      const ReferencedReads& reads, const ReadLayout& layout,
                                      const std::vector<RangeResult>& results) {
  const std::vector<ReferencedPiece>& pieces = layout.referenced;
  int64_t bad_piece = -1;
  auto note = [&](int64_t piece) {
    if (piece >= 0 && (bad_piece < 0 || piece < bad_piece)) bad_piece = piece;
  };
  PartJoiner joiner([&](size_t piece) { return pieces[piece].length; },
                    [&](size_t piece, uint32_t crc) {
                      if (crc != pieces[piece].crc) note(static_cast<int64_t>(piece));
                    });
  for (const RangeResult& result : results) {
    note(result.bad_piece);
    joiner.Add(result.crcs.parts());
  }
  joiner.Finish();
  if (bad_piece >= 0) return ReferencedMismatch(prefix, index, reads, pieces[bad_piece]);
  return absl::OkStatus();
}

}  // namespace

ReadLayout VerificationLayout(const CheckpointIndex& index) {
  ReadLayout layout;
  layout.pieces.Reserve(index.entries.size(), 0);
  for (size_t e = 0; e < index.entries.size(); ++e) {
    layout.pieces.AddEntry();
    for (const TensorRecord& record : index.entries[e].tensors) {
      if (record.stream > 0) {
        layout.referenced.push_back({record.stream, record.shard, record.offset, record.length,
                                     record.crc32c, e, nullptr});
        continue;
      }
      layout.pieces.AddPiece(record.length);
      layout.crc.push_back(record.crc32c);
    }
  }
  layout.pieces.Finish();
  layout.destination.assign(layout.pieces.num_pieces(), nullptr);
  return layout;
}

absl::Status ReadShards(const std::string& prefix, const CheckpointIndex& index,
                        const ReadLayout& layout) {
  std::vector<std::string> paths;
  if (absl::Status s = CheckShardFiles(prefix, index, &paths); !s.ok()) return s;
  ReferencedReads referenced;
  if (absl::Status s = PlanReferencedReads(prefix, index, layout, &referenced); !s.ok()) {
    return s;
  }
  const ReadRanges ranges(index);
  std::vector<RangeResult> results;
  std::vector<RangeResult> referenced_results;
  if (absl::Status s =
          ReadAllRanges(paths, ranges, referenced, layout, &results, &referenced_results);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckChecksums(prefix, index, paths, ranges, layout, results); !s.ok()) {
    return s;
  }
  return CheckReferencedChecksums(prefix, index, referenced, layout, referenced_results);
}

}  // namespace tfdata_checkpoint
