#include "cc/io/checkpoint_writer.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <random>

#include "absl/strings/str_cat.h"
#include "cc/format/checkpoint_index.h"
#include "cc/format/crc32c.h"
#include "cc/format/shard_plan.h"
#include "cc/format/tensor_codec.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/index_file.h"
#include "cc/io/parallel.h"
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
  uint32_t crc = 0;
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
// entry order), the byte stream they make, and where each one's bytes are.
// Per piece only its end offset is stored (and later its CRC): a buffer of
// many small elements must not cost a record per piece while it is written.
class PieceStream {
 public:
  explicit PieceStream(const CapturedState& state) : state_(state) {}

  absl::Status Build() {
    const auto& entries = state_.entries();
    first_piece_.reserve(entries.size() + 1);
    uint64_t pos = 0;
    for (const CapturedEntry& entry : entries) {
      first_piece_.push_back(piece_end_.size());
      for (const CapturedValue& value : entry.values) {
        if (value.inline_scalar) {
          pos += sizeof(int64_t);
        } else if (EncodingFor(value.tensor.dtype()) == TensorEncoding::kRaw) {
          pos += value.tensor.tensor_data().size();
        } else {
          auto payload = std::make_unique<TensorPayload>();
          if (absl::Status s = EncodeTensor(value.tensor, payload.get()); !s.ok()) return s;
          pos += payload->size;
          payloads_.emplace_back(piece_end_.size(), std::move(payload));
        }
        piece_end_.push_back(pos);
      }
    }
    first_piece_.push_back(piece_end_.size());
    return absl::OkStatus();
  }

  size_t num_pieces() const { return piece_end_.size(); }
  uint64_t total_bytes() const { return piece_end_.empty() ? 0 : piece_end_.back(); }
  uint64_t start(size_t p) const { return p == 0 ? 0 : piece_end_[p - 1]; }
  uint64_t end(size_t p) const { return piece_end_[p]; }

  // Walks the pieces in order from the first one that ends after `pos`.
  class Cursor {
   public:
    Cursor(const PieceStream& stream, uint64_t pos) : stream_(stream) {
      const auto& ends = stream.piece_end_;
      piece_ = std::upper_bound(ends.begin(), ends.end(), pos) - ends.begin();
      if (piece_ == ends.size()) return;
      const auto& firsts = stream.first_piece_;
      entry_ = std::upper_bound(firsts.begin(), firsts.end(), piece_) - firsts.begin() - 1;
      value_ = piece_ - firsts[entry_];
    }
    bool done() const { return piece_ == stream_.piece_end_.size(); }
    size_t piece() const { return piece_; }
    const CapturedValue& value() const {
      return stream_.state_.entries()[entry_].values[value_];
    }
    void Next() {
      ++piece_;
      ++value_;
      const auto& entries = stream_.state_.entries();
      while (entry_ < entries.size() && value_ == entries[entry_].values.size()) {
        ++entry_;
        value_ = 0;
      }
    }

   private:
    const PieceStream& stream_;
    size_t piece_ = 0;
    size_t entry_ = 0;
    size_t value_ = 0;
  };

  // Writes bytes [from, from + length) of the piece under `cursor`.
  absl::Status Write(const Cursor& cursor, uint64_t from, uint64_t length,
                     ShardFileWriter* writer, uint32_t* crc) const {
    const CapturedValue& value = cursor.value();
    if (value.inline_scalar) {
      const absl::string_view bytes(reinterpret_cast<const char*>(&value.scalar),
                                    sizeof(int64_t));
      return writer->Write(bytes.substr(from, length), crc);
    }
    if (EncodingFor(value.tensor.dtype()) == TensorEncoding::kRaw) {
      return writer->Write(value.tensor.tensor_data().substr(from, length), crc);
    }
    auto it = std::lower_bound(
        payloads_.begin(), payloads_.end(), cursor.piece(),
        [](const auto& entry, size_t piece) { return entry.first < piece; });
    return WriteSegment(*it->second, from, length, writer, crc);
  }

  const std::vector<size_t>& first_piece() const { return first_piece_; }
  TensorEncoding encoding(size_t p, const CapturedValue& value) const {
    if (value.inline_scalar) return TensorEncoding::kRaw;
    return EncodingFor(value.tensor.dtype());
  }

 private:
  const CapturedState& state_;
  std::vector<size_t> first_piece_;  // Per entry, plus the total.
  std::vector<uint64_t> piece_end_;
  // Pieces that are not a tensor's own buffer, by piece.
  std::vector<std::pair<size_t, std::unique_ptr<TensorPayload>>> payloads_;
};

// The CRC of a part of a piece that lies in one shard.
struct PartialCrc {
  size_t piece;
  uint32_t crc;
  uint64_t length;
};

void DeleteQuietly(Env* env, const std::string& path) {
  env->DeleteFile(path).IgnoreError();
}

}  // namespace

absl::Status WriteCheckpoint(const CapturedState& state, const std::string& prefix,
                             const WriteOptions& options) {
  if (prefix.empty()) return absl::InvalidArgumentError("prefix must not be empty");
  Env* env = Env::Default();

  CheckpointIndex index;
  index.tf_version = TFDC_TF_VERSION;
  index.library_version = TFDC_LIBRARY_VERSION;
  index.nonce = NewNonce();
  index.created_unix_micros = static_cast<int64_t>(env->NowMicros());
  index.element_spec = state.element_spec();
  PieceStream stream(state);
  if (absl::Status s = stream.Build(); !s.ok()) return s;
  index.total_bytes = stream.total_bytes();

  const int64_t num_shards = options.num_shards > 0
                                 ? options.num_shards
                                 : AutoShardCount(index.total_bytes, IoThreadCount());
  std::vector<uint64_t> bounds;
  if (absl::Status s = PlanShards(index.total_bytes, num_shards, &bounds); !s.ok()) {
    return s;
  }

  const std::string directory = PrefixDirectory(prefix);
  if (!directory.empty()) {
    absl::Status s = env->RecursivelyCreateDir(directory);
    if (!s.ok() && s.code() != absl::StatusCode::kAlreadyExists) {
      return Annotate(s, "creating directory", directory);
    }
  }

  index.shards.resize(num_shards);
  std::vector<std::string> shard_paths(num_shards);
  for (int64_t s = 0; s < num_shards; ++s) {
    index.shards[s].name = ShardName(prefix, index.nonce, s, num_shards);
    index.shards[s].size = bounds[s + 1] - bounds[s];
    shard_paths[s] = ShardPath(prefix, index.shards[s].name);
  }

  // Each shard's thread sets the CRC of the pieces that lie wholly in it;
  // the parts of pieces that cross shards are combined afterwards.
  std::vector<uint32_t> piece_crcs(stream.num_pieces(), 0);
  std::vector<ShardResult> results(num_shards);
  std::vector<std::vector<PartialCrc>> partials(num_shards);
  RunInParallel(num_shards, [&](size_t s) {
    ShardResult& result = results[s];
    std::unique_ptr<WritableFile> file;
    result.status = Annotate(env->NewWritableFile(shard_paths[s], &file), "creating",
                             shard_paths[s]);
    if (!result.status.ok()) return;
    ShardFileWriter writer(std::move(file), shard_paths[s]);
    uint32_t shard_crc = 0;
    const uint64_t begin = bounds[s], end = bounds[s + 1];
    if (begin < end) {
      for (PieceStream::Cursor cursor(stream, begin); !cursor.done(); cursor.Next()) {
        const size_t p = cursor.piece();
        const uint64_t piece_start = stream.start(p), piece_end = stream.end(p);
        if (piece_start >= end) break;
        if (piece_end == piece_start) continue;
        const uint64_t from = std::max(begin, piece_start);
        const uint64_t length = std::min(end, piece_end) - from;
        uint32_t crc = 0;
        result.status = stream.Write(cursor, from - piece_start, length, &writer, &crc);
        if (!result.status.ok()) return;
        shard_crc = Crc32cConcat(shard_crc, crc, length);
        if (length == piece_end - piece_start) {
          piece_crcs[p] = crc;
        } else {
          partials[s].push_back({p, crc, length});
        }
      }
    }
    result.status = writer.Finish(options.fsync);
    result.crc = shard_crc;
  });
  auto remove_shards = [&] {
    for (const std::string& path : shard_paths) DeleteQuietly(env, path);
  };
  for (const ShardResult& result : results) {
    if (!result.status.ok()) {
      remove_shards();
      return result.status;
    }
  }
  // A piece's CRC is the concatenation of its parts, in shard order.
  for (int64_t s = 0; s < num_shards; ++s) {
    index.shards[s].crc32c = results[s].crc;
    for (const PartialCrc& part : partials[s]) {
      piece_crcs[part.piece] = Crc32cConcat(piece_crcs[part.piece], part.crc, part.length);
    }
  }

  // The entries go straight into their encoded form: no record per tensor.
  const auto& entries = state.entries();
  size_t metadata_bytes = 0;
  for (const CapturedEntry& entry : entries) metadata_bytes += entry.metadata.size();
  index.encoded_entries.reserve(metadata_bytes + 12 * entries.size() +
                                40 * stream.num_pieces() + 4096);
  EntriesEncoder encoder(state.type_names(), entries.size(), &index.encoded_entries);
  size_t p = 0;
  size_t shard = 0;
  int64_t dims[kMaxRank];
  for (const CapturedEntry& entry : entries) {
    encoder.Entry(entry.type_name_id, entry.metadata,
                  static_cast<uint32_t>(entry.values.size()));
    for (const CapturedValue& value : entry.values) {
      const uint64_t start = stream.start(p);
      // A piece belongs to the first shard that ends after its start (an
      // empty piece at the very end to the last shard).
      while (shard + 1 < static_cast<size_t>(num_shards) && bounds[shard + 1] <= start) {
        ++shard;
      }
      uint32_t dtype = tensorflow::DT_INT64;
      int rank = 0;
      if (!value.inline_scalar) {
        dtype = static_cast<uint32_t>(value.tensor.dtype());
        rank = value.tensor.dims();
        if (rank > kMaxRank) {
          remove_shards();
          return absl::InvalidArgumentError(
              absl::StrCat("a tensor of rank ", rank, " cannot be saved"));
        }
        for (int d = 0; d < rank; ++d) dims[d] = value.tensor.dim_size(d);
      }
      encoder.Tensor(dtype, stream.encoding(p, value), dims, rank,
                     static_cast<uint32_t>(shard), start - bounds[shard],
                     stream.end(p) - start, piece_crcs[p]);
      ++p;
    }
  }

  bool renamed = false;
  absl::Status committed = CommitIndex(index, prefix, options.fsync, &renamed);
  if (!renamed) remove_shards();
  return committed;
}

}  // namespace tfdata_checkpoint
