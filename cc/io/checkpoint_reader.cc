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

struct ReadPart {
  size_t piece;
  uint32_t crc;
  uint64_t length;
};

struct RangeResult {
  absl::Status status;
  uint32_t crc = 0;
  std::vector<ReadPart> parts;
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
              const std::vector<char*>& destinations)
      : file_(file), path_(path), file_offset_(file_offset), dst_(destinations) {}

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
    result->parts.push_back({seg.piece, crc, seg.length});
    result->crc = Crc32cConcat(result->crc, crc, seg.length);
  }

  RandomAccessFile* file_;
  const std::string& path_;
  uint64_t file_offset_;
  const std::vector<char*>& dst_;
  std::string staging_;
};

// Reads all shards of `index` into `destinations` (per tensor, in index
// order) and checks every shard's and every tensor's checksum.
absl::Status ReadShards(const std::string& prefix, const CheckpointIndex& index,
                        const std::vector<char*>& destinations) {
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

  std::vector<uint64_t> piece_sizes;
  for (const EntryRecord& entry : index.entries) {
    for (const TensorRecord& t : entry.tensors) piece_sizes.push_back(t.length);
  }
  const std::vector<uint64_t> shard_starts = ShardStarts(index);
  std::vector<size_t> owner;
  const std::vector<uint64_t> range_bounds =
      SplitRanges(shard_starts, kReadRangeBytes, &owner);
  const std::vector<std::vector<Segment>> segments =
      SegmentsByRange(piece_sizes, range_bounds);
  const size_t num_ranges = owner.size();

  std::vector<RangeResult> results(num_ranges);
  RunInParallel(num_ranges, [&](size_t r) {
    const size_t shard = owner[r];
    if (segments[r].empty()) return;
    std::unique_ptr<RandomAccessFile> file;
    results[r].status = Annotate(env->NewRandomAccessFile(paths[shard], &file),
                                 "opening", paths[shard]);
    if (!results[r].status.ok()) return;
    RangeReader reader(file.get(), paths[shard],
                       range_bounds[r] - shard_starts[shard], destinations);
    results[r].status = reader.Read(segments[r], &results[r]);
  });
  for (const RangeResult& result : results) {
    if (!result.status.ok()) return result.status;
  }

  std::vector<uint32_t> shard_crcs(num_shards, 0);
  std::vector<uint32_t> piece_crcs(piece_sizes.size(), 0);
  for (size_t r = 0; r < num_ranges; ++r) {
    const uint64_t length = range_bounds[r + 1] - range_bounds[r];
    shard_crcs[owner[r]] = Crc32cConcat(shard_crcs[owner[r]], results[r].crc, length);
    for (const ReadPart& part : results[r].parts) {
      piece_crcs[part.piece] = Crc32cConcat(piece_crcs[part.piece], part.crc, part.length);
    }
  }
  for (size_t s = 0; s < num_shards; ++s) {
    if (shard_crcs[s] != index.shards[s].crc32c) {
      return absl::DataLossError(
          absl::StrCat("Checksum mismatch in shard ", paths[s], " of checkpoint ", prefix));
    }
  }
  size_t piece = 0;
  for (size_t e = 0; e < index.entries.size(); ++e) {
    for (const TensorRecord& t : index.entries[e].tensors) {
      if (piece_crcs[piece++] != t.crc32c) {
        return absl::DataLossError(absl::StrCat("Checksum mismatch in tensor of entry ",
                                                e, " in shard ", paths[t.shard],
                                                " of checkpoint ", prefix));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadCheckpointState(const std::string& prefix, RestoredState* state) {
  CheckpointIndex index;
  if (absl::Status s = ReadIndexFile(prefix, &index); !s.ok()) return s;
  const std::string index_path = IndexPath(prefix);

  // Raw tensors are allocated now and read into directly, int64 scalars into
  // their slot; the others are read into side buffers and decoded once their
  // checksums hold.
  const size_t num_entries = index.entries.size();
  size_t num_values = 0;
  for (const EntryRecord& entry : index.entries) num_values += entry.tensors.size();
  state->values.clear();
  state->values.resize(num_values);
  state->first_value.resize(num_entries + 1);
  std::vector<char*> destinations(num_values);
  std::deque<std::string> side_buffers;  // Stable addresses as it grows.
  std::vector<std::pair<size_t, size_t>> to_decode;  // (entry, tensor)
  size_t v = 0;
  for (size_t e = 0; e < num_entries; ++e) {
    state->first_value[e] = v;
    const auto& records = index.entries[e].tensors;
    for (size_t t = 0; t < records.size(); ++t, ++v) {
      const TensorRecord& record = records[t];
      RestoredValue& value = state->values[v];
      if (record.dtype == tensorflow::DT_INT64 && record.shape.empty() &&
          record.encoding == TensorEncoding::kRaw && record.length == sizeof(int64_t)) {
        value.inline_scalar = true;
        destinations[v] = reinterpret_cast<char*>(&value.scalar);
        continue;
      }
      if (absl::Status s = AllocateTensor(record, &value.tensor); !s.ok()) {
        return absl::Status(s.code(), absl::StrCat("Checkpoint index ", index_path,
                                                   ", entry ", e, ": ", s.message()));
      }
      if (record.encoding == TensorEncoding::kRaw) {
        destinations[v] = RawBuffer(&value.tensor);
      } else {
        to_decode.emplace_back(e, t);
        side_buffers.emplace_back(record.length, '\0');
        destinations[v] = side_buffers.back().data();
      }
    }
  }
  state->first_value[num_entries] = v;
  if (absl::Status s = ReadShards(prefix, index, destinations); !s.ok()) return s;
  for (size_t i = 0; i < to_decode.size(); ++i) {
    const auto [e, t] = to_decode[i];
    absl::Status s = DecodeTensor(index.entries[e].tensors[t], side_buffers[i],
                                  &state->values[state->first_value[e] + t].tensor);
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("Checkpoint ", prefix, ", entry ", e,
                                                 ": ", s.message()));
    }
  }
  state->type_names = std::move(index.type_names);
  state->type_name_ids.resize(num_entries);
  state->metadata.resize(num_entries);
  for (size_t e = 0; e < num_entries; ++e) {
    state->type_name_ids[e] = index.entries[e].type_name_id;
    state->metadata[e] = std::move(index.entries[e].metadata);
  }
  return absl::OkStatus();
}

absl::Status ReadCheckpoint(
    const std::string& prefix,
    std::vector<std::unique_ptr<tensorflow::VariantTensorData>>* entries) {
  RestoredState state;
  if (absl::Status s = ReadCheckpointState(prefix, &state); !s.ok()) return s;
  entries->clear();
  entries->reserve(state.metadata.size());
  for (size_t e = 0; e < state.metadata.size(); ++e) {
    auto data = std::make_unique<tensorflow::VariantTensorData>();
    data->set_type_name(state.type_names[state.type_name_ids[e]]);
    data->metadata_string() = std::move(state.metadata[e]);
    for (uint64_t v = state.first_value[e]; v < state.first_value[e + 1]; ++v) {
      RestoredValue& value = state.values[v];
      Tensor* tensor = data->add_tensors();
      if (value.inline_scalar) {
        *tensor = Tensor(tensorflow::DT_INT64, tensorflow::TensorShape({}));
        tensor->scalar<int64_t>()() = value.scalar;
      } else {
        *tensor = std::move(value.tensor);
      }
    }
    entries->push_back(std::move(data));
  }
  return absl::OkStatus();
}

absl::Status VerifyCheckpoint(const std::string& prefix, CheckpointIndex* index) {
  if (absl::Status s = ReadIndexFile(prefix, index); !s.ok()) return s;
  size_t num_pieces = 0;
  for (const EntryRecord& entry : index->entries) num_pieces += entry.tensors.size();
  return ReadShards(prefix, *index, std::vector<char*>(num_pieces, nullptr));
}

}  // namespace tfdata_checkpoint
