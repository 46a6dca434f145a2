#include "cc/io/checkpoint_reader.h"

#include <algorithm>
#include <cstring>
#include <deque>

#include "absl/strings/str_cat.h"
#include "cc/format/crc32c.h"
#include "cc/format/shard_plan.h"
#include "cc/format/tensor_codec.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/index_file.h"
#include "cc/io/parallel.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/platform/file_system.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::Env;
using tensorflow::RandomAccessFile;
using tensorflow::Tensor;

// Reads are cut into ranges of at most this size so that even a checkpoint
// with one shard is read by several threads.
constexpr uint64_t kReadRangeBytes = 32ull << 20;
// Segments smaller than this are read in batches through a staging buffer.
constexpr uint64_t kDirectReadBytes = 256 << 10;
constexpr uint64_t kStagingBytes = 2ull << 20;  // Per IO thread: counts in peak memory.

// The CRC of a part of a piece that one read range holds.
struct ReadPart {
  size_t piece;
  uint32_t crc;
  uint64_t length;
};

// The pieces of a checkpoint: tensor after tensor, entry after entry, one
// byte stream. Per piece only what reading needs: where it ends, its CRC
// from the index, and where its bytes go (null to only verify them).
struct PieceLayout {
  std::vector<uint64_t> end;
  std::vector<uint32_t> crc;
  std::vector<char*> destination;
  // Entry e's pieces are [first_piece[e], first_piece[e + 1]): for errors.
  std::vector<uint64_t> first_piece;

  uint64_t start(size_t p) const { return p == 0 ? 0 : end[p - 1]; }
};

struct RangeResult {
  absl::Status status;
  uint32_t crc = 0;
  // Pieces that lie wholly in the range are checked there; these are the
  // parts of pieces that cross ranges, to be combined afterwards.
  std::vector<ReadPart> parts;
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

class RangeReader {
 public:
  RangeReader(RandomAccessFile* file, const std::string& path, uint64_t file_offset,
              const PieceLayout& layout)
      : file_(file), path_(path), file_offset_(file_offset), layout_(layout),
        dst_(layout.destination) {}

  // Reads the segments, which lie end to end from file_offset_.
  absl::Status Read(const std::vector<Segment>& segments, RangeResult* result) {
    size_t i = 0;
    while (i < segments.size()) {
      const Segment& seg = segments[i];
      if (seg.length >= kDirectReadBytes && dst_[seg.piece] != nullptr) {
        char* dst = dst_[seg.piece] + seg.piece_offset;
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
  absl::Status ReadBatch(const std::vector<Segment>& segments, size_t begin,
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
        char* dst = dst_[seg.piece];
        const absl::string_view bytes(src, take);
        crc = dst != nullptr ? Crc32cCopy(dst + seg.piece_offset + consumed, bytes, crc)
                             : Crc32cExtend(crc, bytes);
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
    const uint64_t piece_length = layout_.end[seg.piece] - layout_.start(seg.piece);
    if (seg.length == piece_length) {
      if (crc != layout_.crc[seg.piece] && result->bad_piece < 0) {
        result->bad_piece = static_cast<int64_t>(seg.piece);
      }
    } else {
      result->parts.push_back({seg.piece, crc, seg.length});
    }
    result->crc = Crc32cConcat(result->crc, crc, seg.length);
  }

  RandomAccessFile* file_;
  const std::string& path_;
  uint64_t file_offset_;
  const PieceLayout& layout_;
  const std::vector<char*>& dst_;
  std::string staging_;
};

// The segments of the pieces that overlap [begin, end), in stream order
// (empty pieces at `begin` included, so that their CRC is checked too).
std::vector<Segment> SegmentsIn(const PieceLayout& layout, uint64_t begin, uint64_t end,
                                bool last_range) {
  std::vector<Segment> segments;
  auto it = std::lower_bound(layout.end.begin(), layout.end.end(), begin);
  for (size_t p = it - layout.end.begin(); p < layout.end.size(); ++p) {
    const uint64_t start = layout.start(p);
    if (start > end || (start == end && !(last_range && layout.end[p] == start))) break;
    if (layout.end[p] == start) {
      // An empty piece belongs to the range that holds its position (the
      // last range for the very end).
      if (start < end || last_range) segments.push_back({p, 0, 0});
      continue;
    }
    if (layout.end[p] <= begin) continue;
    const uint64_t from = std::max(begin, start);
    segments.push_back({p, from - start, std::min(end, layout.end[p]) - from});
  }
  return segments;
}

std::string EntryOfPiece(const PieceLayout& layout, size_t piece) {
  const auto& firsts = layout.first_piece;
  const size_t e = std::upper_bound(firsts.begin(), firsts.end(), piece) - firsts.begin() - 1;
  return absl::StrCat(e);
}

// Reads all shards into `layout.destination` and checks every shard's and
// every piece's checksum.
absl::Status ReadShards(const std::string& prefix, const CheckpointIndex& index,
                        const PieceLayout& layout) {
  Env* env = Env::Default();
  const size_t num_shards = index.shards.size();
  std::vector<std::string> paths(num_shards);
  for (size_t s = 0; s < num_shards; ++s) {
    paths[s] = ShardPath(prefix, index.shards[s].name);
    uint64_t size = 0;
    absl::Status st = env->GetFileSize(paths[s], &size);
    if (absl::IsNotFound(st) || absl::IsNotFound(env->FileExists(paths[s]))) {
      return absl::NotFoundError(absl::StrCat("Shard ", paths[s], " of checkpoint ",
                                              prefix, " is missing"));
    }
    if (!st.ok()) return Annotate(st, "reading", paths[s]);
    if (size != index.shards[s].size) {
      return absl::DataLossError(absl::StrCat("Shard ", paths[s], " has ", size,
                                              " bytes; the index says ",
                                              index.shards[s].size));
    }
  }

  const std::vector<uint64_t> shard_starts = ShardStarts(index);
  std::vector<size_t> owner;
  const std::vector<uint64_t> range_bounds =
      SplitRanges(shard_starts, kReadRangeBytes, &owner);
  const size_t num_ranges = owner.size();

  std::vector<RangeResult> results(num_ranges);
  RunInParallel(num_ranges, [&](size_t r) {
    const size_t shard = owner[r];
    const std::vector<Segment> segments = SegmentsIn(
        layout, range_bounds[r], range_bounds[r + 1], /*last_range=*/r + 1 == num_ranges);
    if (segments.empty()) return;
    std::unique_ptr<RandomAccessFile> file;
    results[r].status = Annotate(env->NewRandomAccessFile(paths[shard], &file),
                                 "opening", paths[shard]);
    if (!results[r].status.ok()) return;
    RangeReader reader(file.get(), paths[shard], range_bounds[r] - shard_starts[shard],
                       layout);
    results[r].status = reader.Read(segments, &results[r]);
  });
  for (const RangeResult& result : results) {
    if (!result.status.ok()) return result.status;
  }

  std::vector<uint32_t> shard_crcs(num_shards, 0);
  int64_t bad_piece = -1;
  // Parts of a piece come in range order: combine them as they come.
  size_t open_piece = SIZE_MAX;
  uint32_t open_crc = 0;
  uint64_t open_length = 0;
  auto close_open_piece = [&] {
    if (open_piece != SIZE_MAX && bad_piece < 0 && open_crc != layout.crc[open_piece]) {
      bad_piece = static_cast<int64_t>(open_piece);
    }
    open_piece = SIZE_MAX;
  };
  for (size_t r = 0; r < num_ranges; ++r) {
    const uint64_t length = range_bounds[r + 1] - range_bounds[r];
    shard_crcs[owner[r]] = Crc32cConcat(shard_crcs[owner[r]], results[r].crc, length);
    if (results[r].bad_piece >= 0 && (bad_piece < 0 || results[r].bad_piece < bad_piece)) {
      bad_piece = results[r].bad_piece;
    }
    for (const ReadPart& part : results[r].parts) {
      if (part.piece != open_piece) {
        close_open_piece();
        open_piece = part.piece;
        open_crc = 0;
        open_length = 0;
      }
      open_crc = Crc32cConcat(open_crc, part.crc, part.length);
      open_length += part.length;
      if (open_length == layout.end[part.piece] - layout.start(part.piece)) {
        close_open_piece();
      }
    }
  }
  close_open_piece();
  for (size_t s = 0; s < num_shards; ++s) {
    if (shard_crcs[s] != index.shards[s].crc32c) {
      return absl::DataLossError(
          absl::StrCat("Checksum mismatch in shard ", paths[s], " of checkpoint ", prefix));
    }
  }
  if (bad_piece >= 0) {
    const uint64_t start = layout.start(bad_piece);
    const size_t shard =
        std::upper_bound(shard_starts.begin(), shard_starts.end() - 1, start) -
        shard_starts.begin() - 1;
    return absl::DataLossError(absl::StrCat("Checksum mismatch in tensor of entry ",
                                            EntryOfPiece(layout, bad_piece), " in shard ",
                                            paths[std::min(shard, num_shards - 1)],
                                            " of checkpoint ", prefix));
  }
  return absl::OkStatus();
}

// Builds the restored state while the index is decoded: values and the
// piece layout, with no record per tensor kept. Metadata stays where it is in
// the index bytes until Finish copies it out.
class StateBuilder : public IndexVisitor {
 public:
  StateBuilder(RestoredState* state, PieceLayout* layout, absl::string_view index_bytes,
               const std::string& index_path)
      : state_(state), layout_(layout), index_bytes_(index_bytes), index_path_(index_path) {}

  absl::Status Begin(std::vector<std::string> type_names, uint64_t num_entries) override {
    state_->type_names = std::move(type_names);
    state_->type_name_ids.resize(num_entries);
    state_->first_value.resize(num_entries + 1);
    metadata_.resize(num_entries);
    layout_->first_piece.resize(num_entries + 1);
    // Room for as many tensors as the index can describe (a record takes at
    // least 30 bytes): vectors that grow by doubling would leave their old
    // buffers behind in the heap, and in the peak memory of the restore.
    // Pages never touched cost nothing.
    const size_t max_tensors = index_bytes_.size() / 30 + 1;
    layout_->end.reserve(max_tensors);
    layout_->crc.reserve(max_tensors);
    state_->value_ref.reserve(max_tensors);
    state_->tensors.reserve(max_tensors);
    state_->scalars.reserve(max_tensors);
    return absl::OkStatus();
  }

  absl::Status Entry(uint64_t e, uint32_t type_name_id, absl::string_view metadata,
                     uint32_t num_tensors) override {
    state_->type_name_ids[e] = type_name_id;
    metadata_[e] = metadata;
    state_->first_value[e] = state_->value_ref.size();
    layout_->first_piece[e] = state_->value_ref.size();
    return absl::OkStatus();
  }

  absl::Status Tensor(uint64_t e, const TensorRecord& record) override {
    if (state_->value_ref.size() >= RestoredState::kMaxValues) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "Checkpoint index ", index_path_, " has more tensors than a restore can hold"));
    }
    layout_->end.push_back(pos_ += record.length);
    layout_->crc.push_back(record.crc32c);
    // Int64 scalars are read into their slot and need no tensor.
    if (record.dtype == tensorflow::DT_INT64 && record.shape.empty() &&
        record.encoding == TensorEncoding::kRaw && record.length == sizeof(int64_t)) {
      state_->AddScalar(0);
      return absl::OkStatus();
    }
    tensorflow::Tensor tensor;
    if (absl::Status s = AllocateTensor(record, &tensor); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("Checkpoint index ", index_path_,
                                                 ", entry ", e, ": ", s.message()));
    }
    if (record.encoding != TensorEncoding::kRaw) {
      to_decode_.push_back({state_->value_ref.size(), e, record});
    }
    state_->AddTensor(std::move(tensor));
    return absl::OkStatus();
  }

  // Once every value exists (addresses are stable from then on).
  void SetDestinations(std::deque<std::string>* side_buffers) {
    const size_t n = state_->value_ref.size();
    state_->first_value.back() = n;
    layout_->first_piece.back() = n;
    layout_->destination.resize(n);
    size_t next_decode = 0;
    for (size_t v = 0; v < n; ++v) {
      if (state_->is_scalar(v)) {
        layout_->destination[v] = reinterpret_cast<char*>(
            &state_->scalars[state_->value_ref[v] & ~RestoredState::kScalarBit]);
      } else if (next_decode < to_decode_.size() && to_decode_[next_decode].value == v) {
        side_buffers->emplace_back(to_decode_[next_decode++].record.length, '\0');
        layout_->destination[v] = side_buffers->back().data();
      } else {
        layout_->destination[v] = RawBuffer(state_->mutable_tensor(v));
      }
    }
  }

  // Copies the metadata out of the index bytes, which can then go.
  void CopyMetadata() {
    size_t total = 0;
    for (absl::string_view m : metadata_) total += m.size();
    state_->metadata_bytes.reserve(total);
    state_->metadata_end.reserve(metadata_.size());
    for (absl::string_view m : metadata_) {
      state_->metadata_bytes.append(m.data(), m.size());
      state_->metadata_end.push_back(state_->metadata_bytes.size());
    }
    std::vector<absl::string_view>().swap(metadata_);
  }

  struct ToDecode {
    size_t value;
    uint64_t entry;
    TensorRecord record;
  };
  const std::vector<ToDecode>& to_decode() const { return to_decode_; }

 private:
  RestoredState* state_;
  PieceLayout* layout_;
  absl::string_view index_bytes_;
  const std::string& index_path_;
  uint64_t pos_ = 0;
  std::vector<absl::string_view> metadata_;  // Into index_bytes_.
  std::vector<ToDecode> to_decode_;
};

// The pieces of a decoded index, for verification only (no destinations).
PieceLayout VerificationLayout(const CheckpointIndex& index) {
  PieceLayout layout;
  layout.first_piece.reserve(index.entries.size() + 1);
  uint64_t pos = 0;
  for (const EntryRecord& entry : index.entries) {
    layout.first_piece.push_back(layout.end.size());
    for (const TensorRecord& record : entry.tensors) {
      layout.end.push_back(pos += record.length);
      layout.crc.push_back(record.crc32c);
    }
  }
  layout.first_piece.push_back(layout.end.size());
  layout.destination.assign(layout.end.size(), nullptr);
  return layout;
}

}  // namespace

absl::Status ReadCheckpointState(const std::string& prefix, RestoredState* state,
                                 const IndexCheck& check_index) {
  std::string index_bytes;
  if (absl::Status s = ReadIndexBytes(prefix, &index_bytes); !s.ok()) return s;
  const std::string index_path = IndexPath(prefix);
  // Raw tensors are allocated while the index is decoded and read into
  // directly, int64 scalars into their slot; the others are read into side
  // buffers and decoded once their checksums hold.
  CheckpointIndex index;
  std::deque<std::string> side_buffers;  // Stable addresses as it grows.
  std::vector<StateBuilder::ToDecode> to_decode;
  {
    PieceLayout layout;
    StateBuilder builder(state, &layout, index_bytes, index_path);
    if (absl::Status s = DecodeIndexWith(index_bytes, index_path, &index, &builder);
        !s.ok()) {
      return s;
    }
    if (check_index) {
      if (absl::Status s = check_index(index); !s.ok()) return s;
    }
    builder.SetDestinations(&side_buffers);
    if (absl::Status s = ReadShards(prefix, index, layout); !s.ok()) return s;
    builder.CopyMetadata();
    to_decode = builder.to_decode();
  }
  // Neither the index bytes nor the layout are needed while the iterator is
  // rebuilt next to the tensors.
  std::string().swap(index_bytes);
  for (size_t i = 0; i < to_decode.size(); ++i) {
    const StateBuilder::ToDecode& d = to_decode[i];
    absl::Status s =
        DecodeTensor(d.record, side_buffers[i], state->mutable_tensor(d.value));
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("Checkpoint ", prefix, ", entry ", d.entry,
                                                 ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadCheckpoint(
    const std::string& prefix,
    std::vector<std::unique_ptr<tensorflow::VariantTensorData>>* entries) {
  RestoredState state;
  if (absl::Status s = ReadCheckpointState(prefix, &state); !s.ok()) return s;
  entries->clear();
  entries->reserve(state.num_entries());
  for (size_t e = 0; e < state.num_entries(); ++e) {
    auto data = std::make_unique<tensorflow::VariantTensorData>();
    state.EntryData(e, data.get());
    entries->push_back(std::move(data));
  }
  return absl::OkStatus();
}

absl::Status VerifyCheckpoint(const std::string& prefix, CheckpointIndex* index) {
  if (absl::Status s = ReadIndexFile(prefix, index); !s.ok()) return s;
  return ReadShards(prefix, *index, VerificationLayout(*index));
}

}  // namespace tfdata_checkpoint
