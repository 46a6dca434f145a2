#include "cc/io/checkpoint_writer.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <random>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "cc/format/checkpoint_index.h"
#include "cc/format/crc32c.h"
#include "cc/format/shard_plan.h"
#include "cc/format/tensor_codec.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/index_file.h"
#include "cc/io/parallel.h"
#include "tensorflow/core/data/serialization_utils.h"
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
using tensorflow::VariantTensorData;
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

// CRC of the bytes of one tensor that one shard holds.
struct TensorPart {
  size_t piece;
  uint32_t crc;
  uint64_t length;
};

struct ShardResult {
  absl::Status status;
  uint32_t crc = 0;
  std::vector<TensorPart> parts;
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

void DeleteQuietly(Env* env, const std::string& path) {
  env->DeleteFile(path).IgnoreError();
}

}  // namespace

absl::Status CapturedState::Capture(const Tensor& state, CapturedState* out) {
  if (state.dtype() != tensorflow::DT_VARIANT || state.dims() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state must be the 1-D variant tensor that SerializeIterator returns, got a ",
        tensorflow::DataTypeString(state.dtype()), " tensor of shape ",
        state.shape().DebugString()));
  }
  out->state_ = state;
  out->entries_.clear();
  const auto variants = state.vec<tensorflow::Variant>();
  out->entries_.reserve(variants.size());
  for (int64_t i = 0; i < variants.size(); ++i) {
    const auto* entry = variants(i).get<tensorflow::data::IteratorStateVariant>();
    if (entry == nullptr || entry->GetData() == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state element ", i, " is not an iterator state (it holds '",
          variants(i).TypeName(), "')"));
    }
    out->entries_.push_back(entry->GetData());
  }
  return absl::OkStatus();
}

absl::Status WriteCheckpoint(const CapturedState& state, const std::string& prefix,
                             const WriteOptions& options) {
  if (prefix.empty()) return absl::InvalidArgumentError("prefix must not be empty");
  Env* env = Env::Default();
  const std::vector<const VariantTensorData*>& entries = state.entries();

  CheckpointIndex index;
  index.tf_version = TFDC_TF_VERSION;
  index.library_version = TFDC_LIBRARY_VERSION;
  index.nonce = NewNonce();
  index.created_unix_micros = static_cast<int64_t>(env->NowMicros());
  std::deque<TensorPayload> payloads;  // Never moves its elements.
  std::vector<uint64_t> piece_sizes;
  std::vector<TensorRecord*> piece_records;
  std::unordered_map<std::string, uint32_t> type_name_ids;
  index.entries.resize(entries.size());
  for (size_t e = 0; e < entries.size(); ++e) {
    const VariantTensorData& data = *entries[e];
    auto [it, inserted] = type_name_ids.emplace(data.type_name(), index.type_names.size());
    if (inserted) index.type_names.push_back(data.type_name());
    EntryRecord& entry = index.entries[e];
    entry.type_name_id = it->second;
    entry.metadata = data.metadata_string();
    entry.tensors.resize(data.tensors_size());
  }
  // Records are addressed through pointers below, so `index.entries` must not
  // reallocate from here on.
  for (size_t e = 0; e < entries.size(); ++e) {
    const VariantTensorData& data = *entries[e];
    for (int t = 0; t < data.tensors_size(); ++t) {
      const Tensor& tensor = data.tensors(t);
      TensorRecord& record = index.entries[e].tensors[t];
      record.dtype = static_cast<uint32_t>(tensor.dtype());
      for (int d = 0; d < tensor.dims(); ++d) record.shape.push_back(tensor.dim_size(d));
      payloads.emplace_back();
      if (absl::Status s = EncodeTensor(tensor, &payloads.back()); !s.ok()) return s;
      record.encoding = payloads.back().encoding;
      record.length = payloads.back().size;
      piece_sizes.push_back(record.length);
      piece_records.push_back(&record);
      index.total_bytes += record.length;
    }
  }

  const int64_t num_shards = options.num_shards > 0
                                 ? options.num_shards
                                 : AutoShardCount(index.total_bytes, IoThreadCount());
  std::vector<uint64_t> bounds;
  if (absl::Status s = PlanShards(index.total_bytes, num_shards, &bounds); !s.ok()) {
    return s;
  }
  const std::vector<std::vector<Segment>> segments = SegmentsByRange(piece_sizes, bounds);

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

  std::vector<ShardResult> results(num_shards);
  RunInParallel(num_shards, [&](size_t s) {
    ShardResult& result = results[s];
    std::unique_ptr<WritableFile> file;
    result.status = Annotate(env->NewWritableFile(shard_paths[s], &file), "creating",
                             shard_paths[s]);
    if (!result.status.ok()) return;
    ShardFileWriter writer(std::move(file), shard_paths[s]);
    uint32_t shard_crc = 0;
    result.parts.reserve(segments[s].size());
    for (const Segment& seg : segments[s]) {
      uint32_t part = 0;
      result.status =
          WriteSegment(payloads[seg.piece], seg.piece_offset, seg.length, &writer, &part);
      if (!result.status.ok()) return;
      shard_crc = Crc32cConcat(shard_crc, part, seg.length);
      result.parts.push_back({seg.piece, part, seg.length});
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

  // Each tensor's CRC is the concatenation of its parts, in shard order; a
  // tensor lives in the shard of its first part.
  std::vector<uint32_t> piece_crcs(payloads.size(), 0);
  std::vector<bool> placed(payloads.size(), false);
  for (int64_t s = 0; s < num_shards; ++s) {
    index.shards[s].crc32c = results[s].crc;
    for (const TensorPart& part : results[s].parts) {
      piece_crcs[part.piece] = Crc32cConcat(piece_crcs[part.piece], part.crc, part.length);
      if (!placed[part.piece]) {
        placed[part.piece] = true;
        piece_records[part.piece]->shard = static_cast<uint32_t>(s);
      }
    }
  }
  uint64_t pos = 0;
  for (size_t p = 0; p < payloads.size(); ++p) {
    TensorRecord* record = piece_records[p];
    record->offset = pos - bounds[record->shard];
    record->crc32c = piece_crcs[p];
    pos += piece_sizes[p];
  }

  bool renamed = false;
  absl::Status committed = CommitIndex(index, prefix, options.fsync, &renamed);
  if (!renamed) remove_shards();
  return committed;
}

}  // namespace tfdata_checkpoint
