#include "cc/io/checkpoint_writer.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "cc/format/checkpoint_index.h"
#include "cc/format/crc32c.h"
#include "cc/format/piece_layout.h"
#include "cc/format/shard_plan.h"
#include "cc/format/tensor_codec.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/incremental_bases.h"
#include "cc/io/index_file.h"
#include "cc/io/parallel.h"
#include "cc/io/reference_plan.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/platform/file_system.h"

// Both set by CMakeLists.txt: the versions recorded in every index.
#ifndef TFDC_LIBRARY_VERSION
#define TFDC_LIBRARY_VERSION "unknown"
#endif
#ifndef TFDC_TF_VERSION
#define TFDC_TF_VERSION "unknown"
#endif

namespace tfdata_checkpoint {
namespace {

using tensorflow::Env;
using tensorflow::Tensor;
using tensorflow::WritableFile;

// Segments smaller than this are gathered into a staging buffer so that a
// buffer of many small elements still becomes few large writes.
constexpr uint64_t kDirectWriteBytes = 256 << 10;
constexpr size_t kStagingBytes = 2 << 20;  // Per IO thread: counts in peak memory.

uint64_t NewNonce() {
  std::random_device device;
  const uint64_t time = static_cast<uint64_t>(
      std::chrono::steady_clock::now().time_since_epoch().count());
  return ((static_cast<uint64_t>(device()) << 32) ^ device()) ^ (time * 0x9E3779B97F4A7C15ull);
}

struct ShardResult {
  absl::Status status;
  RangeCrcs crcs;
};

class ShardFileWriter {
 public:
  ShardFileWriter(std::unique_ptr<WritableFile> file, std::string path)
      : file_(std::move(file)), path_(std::move(path)) {}

  // Appends `data`; extends `crc` by it.
  absl::Status Write(absl::string_view data, uint32_t* crc) {
    if (data.size() >= kDirectWriteBytes) {
      *crc = Crc32cExtend(*crc, data);
      if (absl::Status s = Flush(); !s.ok()) return s;
      return Annotate(file_->Append(data), "writing", path_);
    }
    if (staging_.size() + data.size() > kStagingBytes) {
      if (absl::Status s = Flush(); !s.ok()) return s;
    }
    if (staging_.capacity() < kStagingBytes) staging_.reserve(kStagingBytes);
    const size_t old_size = staging_.size();
    staging_.resize(old_size + data.size());
    *crc = Crc32cCopy(&staging_[old_size], data, *crc);
    return absl::OkStatus();
  }

  absl::Status Finish(bool fsync) {
    if (absl::Status s = Flush(); !s.ok()) return s;
    if (fsync) {
      if (absl::Status s = Annotate(file_->Sync(), "syncing", path_); !s.ok()) return s;
    }
    if (absl::Status s = Annotate(file_->Close(), "closing", path_); !s.ok()) return s;
    return fsync ? SyncLocalFile(path_) : absl::OkStatus();
  }

 private:
  absl::Status Flush() {
    if (staging_.empty()) return absl::OkStatus();
    absl::Status s = Annotate(file_->Append(staging_), "writing", path_);
    staging_.clear();
    return s;
  }

  std::unique_ptr<WritableFile> file_;
  std::string path_;
  std::string staging_;
};

// Writes the bytes [offset, offset + length) of `payload`.
absl::Status WriteSegment(const TensorPayload& payload, uint64_t offset,
                          uint64_t length, ShardFileWriter* writer, uint32_t* crc) {
  uint64_t chunk_start = 0;
  for (absl::string_view chunk : payload.chunks) {
    if (length == 0) break;
    const uint64_t chunk_end = chunk_start + chunk.size();
    if (chunk_end > offset) {
      const uint64_t from = offset - chunk_start;
      const uint64_t take = std::min<uint64_t>(chunk.size() - from, length);
      if (absl::Status s = writer->Write(chunk.substr(from, take), crc); !s.ok()) {
        return s;
      }
      offset += take;
      length -= take;
    }
    chunk_start = chunk_end;
  }
  return absl::OkStatus();
}

// The values of a CapturedState as one sequence of pieces (one per value, in
// entry order, except the values an incremental save references instead of
// writing), the byte stream they make, and where each one's bytes are.
class PieceStream {
 public:
  // `referenced`, if given, has one flag per value of `state` in entry
  // order: flagged values are left out of the stream.
  explicit PieceStream(const CapturedState& state,
                       const std::vector<bool>* referenced = nullptr)
      : state_(state), referenced_(referenced) {}

  absl::Status Build() {
    const auto& entries = state_.entries();
    layout_.Reserve(entries.size(), 0);
    if (referenced_ != nullptr) entry_first_value_.reserve(entries.size());
    size_t v = 0;
    for (const CapturedEntry& entry : entries) {
      layout_.AddEntry();
      if (referenced_ != nullptr) entry_first_value_.push_back(v);
      for (const CapturedValue& value : entry.values) {
        if (referenced_ != nullptr && (*referenced_)[v++]) continue;
        uint64_t length = 0;
        if (value.inline_scalar) {
          length = sizeof(int64_t);
        } else if (EncodingFor(value.tensor.dtype()) == TensorEncoding::kRaw) {
          length = value.tensor.tensor_data().size();
        } else {
          auto payload = std::make_unique<TensorPayload>();
          if (absl::Status s = EncodeTensor(value.tensor, payload.get()); !s.ok()) return s;
          length = payload->size;
          payloads_.emplace_back(layout_.num_pieces(), std::move(payload));
        }
        layout_.AddPiece(length);
      }
    }
    layout_.Finish();
    return absl::OkStatus();
  }

  const PieceLayout& layout() const { return layout_; }

  // Finds the value of each piece, walking forward from `first_piece`.
  class ValueCursor {
   public:
    ValueCursor(const PieceStream& stream, size_t first_piece)
        : stream_(stream), entries_(stream.state_.entries()), piece_(first_piece) {
      if (first_piece == stream.layout_.num_pieces()) return;
      entry_ = stream.layout_.EntryOf(first_piece);
      Settle();
      for (size_t k = first_piece - stream.layout_.first_piece(entry_); k > 0; --k) {
        ++value_;
        Settle();
      }
    }
    // The value of piece `p`, at or after the last one asked for.
    const CapturedValue& ValueOf(size_t p) {
      for (; piece_ < p; ++piece_) {
        ++value_;
        Settle();
      }
      return entries_[entry_].values[value_];
    }

   private:
    // Moves to the first written value at or after the current one.
    void Settle() {
      while (entry_ < entries_.size()) {
        const auto& values = entries_[entry_].values;
        while (value_ < values.size() && !stream_.Written(entry_, value_)) ++value_;
        if (value_ < values.size()) return;
        ++entry_;
        value_ = 0;
      }
    }

    const PieceStream& stream_;
    const std::deque<CapturedEntry>& entries_;
    size_t piece_;
    size_t entry_ = 0;
    size_t value_ = 0;
  };

  // Writes bytes [from, from + length) of piece `p`, whose value is `value`.
  absl::Status Write(size_t p, const CapturedValue& value, uint64_t from, uint64_t length,
                     ShardFileWriter* writer, uint32_t* crc) const {
    if (value.inline_scalar) {
      const absl::string_view bytes(reinterpret_cast<const char*>(&value.scalar),
                                    sizeof(int64_t));
      return writer->Write(bytes.substr(from, length), crc);
    }
    if (EncodingFor(value.tensor.dtype()) == TensorEncoding::kRaw) {
      return writer->Write(value.tensor.tensor_data().substr(from, length), crc);
    }
    auto it = std::lower_bound(
        payloads_.begin(), payloads_.end(), p,
        [](const auto& entry, size_t piece) { return entry.first < piece; });
    return WriteSegment(*it->second, from, length, writer, crc);
  }

  static TensorEncoding encoding(const CapturedValue& value) {
    if (value.inline_scalar) return TensorEncoding::kRaw;
    return EncodingFor(value.tensor.dtype());
  }

 private:
  // Whether value `value` of entry `entry` is in the stream.
  bool Written(size_t entry, size_t value) const {
    return referenced_ == nullptr || !(*referenced_)[entry_first_value_[entry] + value];
  }

  const CapturedState& state_;
  const std::vector<bool>* referenced_;
  std::vector<size_t> entry_first_value_;  // Only with `referenced_`.
  PieceLayout layout_;
  // Pieces that are not a tensor's own buffer, by piece.
  std::vector<std::pair<size_t, std::unique_ptr<TensorPayload>>> payloads_;
};

// Deletes the shard files of a save unless its index was renamed into place:
// on every failure after the first shard is created, nothing of the save
// stays behind.
class UncommittedShards {
 public:
  explicit UncommittedShards(const std::vector<std::string>& paths) : paths_(paths) {}
  UncommittedShards(const UncommittedShards&) = delete;
  UncommittedShards& operator=(const UncommittedShards&) = delete;
  ~UncommittedShards() {
    if (committed_) return;
    for (const std::string& path : paths_) Env::Default()->DeleteFile(path).IgnoreError();
  }
  void Committed() { committed_ = true; }

 private:
  const std::vector<std::string>& paths_;
  bool committed_ = false;
};

// The index as far as it is known before anything is written.
CheckpointIndex NewIndex(const CapturedState& state) {
  CheckpointIndex index;
  index.tf_version = TFDC_TF_VERSION;
  index.library_version = TFDC_LIBRARY_VERSION;
  index.nonce = NewNonce();
  index.created_unix_micros = static_cast<int64_t>(Env::Default()->NowMicros());
  index.element_spec = state.element_spec();
  return index;
}

// Plan: how many shards, which bytes of the stream each holds (`bounds`),
// their names in the index and their paths; creates the directory.
absl::Status PlanShardFiles(const std::string& prefix, const WriteOptions& options,
                            CheckpointIndex* index, std::vector<uint64_t>* bounds,
                            std::vector<std::string>* shard_paths) {
  const int64_t num_shards = options.num_shards > 0
                                 ? options.num_shards
                                 : AutoShardCount(index->total_bytes, IoThreadCount());
  if (absl::Status s = PlanShards(index->total_bytes, num_shards, bounds); !s.ok()) {
    return s;
  }
  const std::string directory = PrefixDirectory(prefix);
  if (!directory.empty()) {
    absl::Status s = Env::Default()->RecursivelyCreateDir(directory);
    if (!s.ok() && s.code() != absl::StatusCode::kAlreadyExists) {
      return Annotate(s, "creating directory", directory);
    }
  }
  index->shards.resize(num_shards);
  shard_paths->resize(num_shards);
  for (int64_t s = 0; s < num_shards; ++s) {
    index->shards[s].name = ShardName(prefix, index->nonce, s, num_shards);
    index->shards[s].size = (*bounds)[s + 1] - (*bounds)[s];
    (*shard_paths)[s] = ShardPath(prefix, index->shards[s].name);
  }
  return absl::OkStatus();
}

// Write shards: each in parallel, with its CRC into the index, and every
// piece's CRC into `piece_crcs`. Each shard's thread sets the CRC of the
// pieces that lie wholly in it; the parts of pieces that cross shards are
// joined afterwards.
absl::Status WriteShards(const PieceStream& stream, const std::vector<uint64_t>& bounds,
                         const std::vector<std::string>& shard_paths, bool fsync,
                         CheckpointIndex* index, std::vector<uint32_t>* piece_crcs) {
  const PieceLayout& layout = stream.layout();
  const size_t num_shards = shard_paths.size();
  piece_crcs->assign(layout.num_pieces(), 0);
  std::vector<ShardResult> results(num_shards);
  RunInParallel(num_shards, [&](size_t s) {
    ShardResult& result = results[s];
    std::unique_ptr<WritableFile> file;
    result.status = Annotate(Env::Default()->NewWritableFile(shard_paths[s], &file),
                             "creating", shard_paths[s]);
    if (!result.status.ok()) return;
    ShardFileWriter writer(std::move(file), shard_paths[s]);
    SegmentWalk walk(layout, bounds[s], bounds[s + 1], /*last_range=*/s + 1 == num_shards);
    Segment seg;
    if (walk.Next(&seg)) {
      PieceStream::ValueCursor values(stream, seg.piece);
      do {
        if (seg.length == 0) continue;  // Nothing to write; its CRC is 0.
        uint32_t crc = 0;
        result.status = stream.Write(seg.piece, values.ValueOf(seg.piece), seg.piece_offset,
                                     seg.length, &writer, &crc);
        if (!result.status.ok()) return;
        if (result.crcs.Add(layout, seg, crc)) (*piece_crcs)[seg.piece] = crc;
      } while (walk.Next(&seg));
    }
    result.status = writer.Finish(fsync);
  });
  for (const ShardResult& result : results) {
    if (!result.status.ok()) return result.status;
  }
  // A piece's CRC is the concatenation of its parts, in shard order.
  PartJoiner joiner(layout, [&](size_t piece, uint32_t crc) { (*piece_crcs)[piece] = crc; });
  for (size_t s = 0; s < num_shards; ++s) {
    index->shards[s].crc32c = results[s].crcs.crc();
    joiner.Add(results[s].crcs.parts());
  }
  joiner.Finish();
  return absl::OkStatus();
}

// Write index, first half: the entries go straight into their encoded form,
// with no record per tensor.
// `plan`, for an incremental save, gives the referenced values' records.
absl::Status EncodeEntries(const CapturedState& state, const PieceLayout& layout,
                           const std::vector<uint64_t>& bounds,
                           const std::vector<uint32_t>& piece_crcs, const ReferencePlan* plan,
                           CheckpointIndex* index) {
  const auto& entries = state.entries();
  size_t metadata_bytes = 0;
  for (const CapturedEntry& entry : entries) metadata_bytes += entry.metadata.size();
  index->encoded_entries.reserve(metadata_bytes + 12 * entries.size() +
                                 40 * layout.num_pieces() + 4096);
  EntriesEncoder encoder(state.type_names(), entries.size(), &index->encoded_entries,
                         index->major_version);
  size_t p = 0;  // Own piece.
  size_t v = 0;  // Value.
  size_t r = 0;  // Referenced value.
  int64_t dims[kMaxRank];
  for (const CapturedEntry& entry : entries) {
    encoder.Entry(entry.type_name_id, entry.metadata,
                  static_cast<uint32_t>(entry.values.size()));
    for (const CapturedValue& value : entry.values) {
      uint32_t dtype = tensorflow::DT_INT64;
      int rank = 0;
      if (!value.inline_scalar) {
        dtype = static_cast<uint32_t>(value.tensor.dtype());
        rank = value.tensor.dims();
        if (rank > kMaxRank) {
          return absl::InvalidArgumentError(
              absl::StrCat("a tensor of rank ", rank, " cannot be saved"));
        }
        for (int d = 0; d < rank; ++d) dims[d] = value.tensor.dim_size(d);
      }
      if (plan != nullptr && plan->referenced[v++]) {
        const TensorLocation& l = plan->refs[r++];
        encoder.Tensor(dtype, PieceStream::encoding(value), dims, rank, l.shard, l.offset,
                       l.length, l.crc32c, plan->stream_ids[l.stream]);
        continue;
      }
      const uint64_t start = layout.start(p);
      const size_t shard = RangeHolding(bounds, start);
      encoder.Tensor(dtype, PieceStream::encoding(value), dims, rank,
                     static_cast<uint32_t>(shard), start - bounds[shard], layout.length(p),
                     piece_crcs[p]);
      ++p;
    }
  }
  return absl::OkStatus();
}

// The committed checkpoint as its writer's next base: every tensor of the
// capture that a later save may reference, at its own new bytes (stream 0)
// or at the location it referenced (the index's stream ids are the base's
// stream numbers: base stream j >= 1 is index.streams[j - 1]).
std::shared_ptr<const IncrementalBase> NewBase(const CapturedState& state,
                                               const std::string& prefix,
                                               const CheckpointIndex& index,
                                               const PieceLayout& layout,
                                               const std::vector<uint64_t>& bounds,
                                               const std::vector<uint32_t>& piece_crcs,
                                               const ReferencePlan* plan) {
  std::vector<StreamRecord> streams(1 + index.streams.size());
  streams[0].shards = index.shards;
  for (size_t j = 0; j < index.streams.size(); ++j) streams[j + 1] = index.streams[j];
  auto base = std::make_shared<IncrementalBase>(prefix, std::move(streams));
  size_t tensors = 0;  // An upper bound of what the base holds.
  for (const CapturedEntry& entry : state.entries()) {
    for (const CapturedValue& value : entry.values) tensors += value.inline_scalar ? 0 : 1;
  }
  base->Reserve(tensors);
  size_t p = 0, v = 0, r = 0;
  for (const CapturedEntry& entry : state.entries()) {
    for (const CapturedValue& value : entry.values) {
      if (plan != nullptr && plan->referenced[v++]) {
        TensorLocation location = plan->refs[r++];
        location.stream = plan->stream_ids[location.stream];
        base->Add(value.tensor, location);
        continue;
      }
      const size_t piece = p++;
      if (value.inline_scalar) continue;
      const TensorEncoding encoding = PieceStream::encoding(value);
      if (encoding == TensorEncoding::kTensorProto ||
          layout.length(piece) < kMinReferencedBytes) {
        continue;
      }
      const uint64_t start = layout.start(piece);
      const size_t shard = RangeHolding(bounds, start);
      TensorLocation location;
      location.stream = 0;
      location.shard = static_cast<uint32_t>(shard);
      location.offset = start - bounds[shard];
      location.length = layout.length(piece);
      location.crc32c = piece_crcs[piece];
      location.encoding = encoding;
      base->Add(value.tensor, location);
    }
  }
  base->Finish();
  return base;
}

// The files CommitIndex must not delete when the save replaces a checkpoint
// at `prefix`: those the new index references, and those its base
// references (a base at another prefix may reference the replaced
// checkpoint's own shards). A base at `prefix` itself is what is replaced;
// the plan wrote the save in full then.
std::vector<std::string> FilesToKeep(const ReferencePlan& plan, const IncrementalBase* base,
                                     const std::string& prefix) {
  std::vector<std::string> keep = plan.referenced_files;
  if (base != nullptr && !SamePrefix(base->prefix(), prefix)) {
    keep.insert(keep.end(), base->files().begin(), base->files().end());
  }
  std::sort(keep.begin(), keep.end());
  keep.erase(std::unique(keep.begin(), keep.end()), keep.end());
  return keep;
}

}  // namespace

absl::Status WriteCheckpoint(const CapturedState& state, const std::string& prefix,
                             const WriteOptions& options, WriteReport* report) {
  if (prefix.empty()) return absl::InvalidArgumentError("prefix must not be empty");
  CheckpointIndex index = NewIndex(state);
  // Without a key no base is looked at or changed: a full save, as always.
  const bool keyed = !options.incremental_key.empty();
  IncrementalBases::Lookup lookup;
  ReferencePlan plan;
  if (keyed) {
    lookup = IncrementalBases::Global()->Get(options.incremental_key);
    plan = PlanReferences(state, lookup.base.get(), prefix);
  }
  auto stream =
      std::make_unique<PieceStream>(state, plan.incremental ? &plan.referenced : nullptr);
  if (absl::Status s = stream->Build(); !s.ok()) return s;
  if (plan.incremental && ExceedsSpaceBound(plan, stream->layout().total_bytes())) {
    plan = ReferencePlan();
    plan.full_reason = absl::StrCat(
        "the files it would reference and its new bytes would exceed ", kMaxSpaceAmplification,
        "x the state's bytes");
    stream = std::make_unique<PieceStream>(state);
    if (absl::Status s = stream->Build(); !s.ok()) return s;
  }
  const ReferencePlan* references = plan.incremental ? &plan : nullptr;
  if (references != nullptr) {
    index.major_version = kIncrementalMajorVersion;
    index.minor_version = kIncrementalMinorVersion;
    for (uint32_t b : plan.used_streams) index.streams.push_back(lookup.base->streams()[b]);
    for (StreamRecord& referenced : index.streams) {
      for (ShardRecord& shard : referenced.shards) shard.crc32c = 0;  // Not in the format.
    }
  }
  index.total_bytes = stream->layout().total_bytes();

  std::vector<uint64_t> bounds;
  std::vector<std::string> shard_paths;
  if (absl::Status s = PlanShardFiles(prefix, options, &index, &bounds, &shard_paths);
      !s.ok()) {
    return s;
  }
  UncommittedShards uncommitted(shard_paths);
  std::vector<uint32_t> piece_crcs;
  if (absl::Status s =
          WriteShards(*stream, bounds, shard_paths, options.fsync, &index, &piece_crcs);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          EncodeEntries(state, stream->layout(), bounds, piece_crcs, references, &index);
      !s.ok()) {
    return s;
  }
  // Commit: from the rename on, the shards are the checkpoint's, even if a
  // later step (syncing the directory) failed.
  bool renamed = false;
  absl::Status committed =
      CommitIndex(index, prefix, options.fsync, &renamed,
                  keyed ? FilesToKeep(plan, lookup.base.get(), prefix)
                        : std::vector<std::string>());
  if (renamed) uncommitted.Committed();
  if (committed.ok() && keyed) {
    IncrementalBases::Global()->Set(
        options.incremental_key,
        NewBase(state, prefix, index, stream->layout(), bounds, piece_crcs, references),
        lookup.generation);
  }
  if (report != nullptr) {
    report->incremental = references != nullptr;
    report->full_reason = references != nullptr ? "" : plan.full_reason;
    report->own_bytes = index.total_bytes;
    report->referenced_bytes = plan.referenced_bytes;
  }
  return committed;
}

}  // namespace tfdata_checkpoint
