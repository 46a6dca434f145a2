// The checkpoint index (manifest): what a committed checkpoint holds and where
// every byte of it lives. See docs/FORMAT.md for the byte layout.
#ifndef TFDATA_CHECKPOINT_CC_FORMAT_CHECKPOINT_INDEX_H_
#define TFDATA_CHECKPOINT_CC_FORMAT_CHECKPOINT_INDEX_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace tfdata_checkpoint {

inline constexpr char kIndexMagic[8] = {'T', 'F', 'D', 'C', 'I', 'D', 'X', '\n'};
// Full saves write format 1.1, so that older readers keep reading them.
inline constexpr uint32_t kFormatMajorVersion = 1;
// 1.1 added the element spec after the entries; 1.0 indexes have none.
inline constexpr uint32_t kFormatMinorVersion = 1;
// An incremental save (one with at least one tensor that lives in an earlier
// checkpoint's shards) writes format 2.0: 1.1 plus referenced streams and a
// stream id per tensor. A 1.x-only reader rejects it as a newer major
// version.
inline constexpr uint32_t kIncrementalMajorVersion = 2;
inline constexpr uint32_t kIncrementalMinorVersion = 0;
// No real TensorShape has more dimensions (TF's own limit is 254).
inline constexpr int kMaxRank = 254;

// How a tensor's bytes are laid out in the shards.
enum class TensorEncoding : uint8_t {
  kRaw = 0,          // The tensor's own buffer, native little-endian.
  kStringList = 1,   // n little-endian uint64 lengths, then the n strings.
  kTensorProto = 2,  // A serialized TensorProto (variants, resources, ...).
};
inline constexpr int kNumEncodings = 3;

struct TensorRecord {
  // 0: the index's own shards; j >= 1: CheckpointIndex::streams[j - 1]
  // (format 2.0 on; always 0 in 1.x).
  uint32_t stream = 0;
  uint32_t dtype = 0;  // tensorflow::DataType value.
  TensorEncoding encoding = TensorEncoding::kRaw;
  // Inline: an index of many small entries must not pay a heap allocation
  // per tensor.
  absl::InlinedVector<int64_t, 4> shape;
  uint32_t shard = 0;   // Shard of `stream` holding the first byte.
  uint64_t offset = 0;  // Offset of the first byte in that shard; the bytes
                        // continue into the following shards of the same
                        // stream from offset 0.
  uint64_t length = 0;
  uint32_t crc32c = 0;  // Over the `length` bytes.
};

struct EntryRecord {
  uint32_t type_name_id = 0;  // Index into CheckpointIndex::type_names.
  std::string metadata;
  absl::InlinedVector<TensorRecord, 1> tensors;
};

struct ShardRecord {
  std::string name;  // Basename, in the index's directory.
  uint64_t size = 0;
  uint32_t crc32c = 0;  // Unused (0) in a referenced stream: see StreamRecord.
};

// The shard files of an earlier checkpoint that some tensors of this one
// live in (format 2.0): all of that checkpoint's own shards, in order, so
// that offsets mean what they meant there. No shard CRC: a referenced stream
// is read only in parts, and each referenced tensor's CRC32C covers its bytes.
struct StreamRecord {
  std::vector<ShardRecord> shards;
};

// The dtype and shape of one component of the elements an iterator hands out.
struct ComponentSpec {
  uint32_t dtype = 0;  // tensorflow::DataType value.
  bool unknown_rank = false;
  absl::InlinedVector<int64_t, 4> dims;  // -1: unknown dimension.
};

// The dimensions of `component` joined by ", " or ",", with `unknown` for
// each unknown one: "[null, 3]" (JSON), "[?,3]" (messages).
std::string DimsString(const ComponentSpec& component, absl::string_view separator,
                       absl::string_view unknown);

struct CheckpointIndex {
  uint32_t major_version = kFormatMajorVersion;
  uint32_t minor_version = kFormatMinorVersion;
  std::string tf_version;
  std::string library_version;
  uint64_t nonce = 0;  // Also in the shard names: ties shards to this index.
  int64_t created_unix_micros = 0;
  uint64_t total_bytes = 0;  // Of the own shards (the own stream).
  std::vector<ShardRecord> shards;
  // Format 2.0: the referenced streams; tensor stream j >= 1 is streams[j - 1].
  std::vector<StreamRecord> streams;
  std::vector<std::string> type_names;
  std::vector<EntryRecord> entries;
  // Alternatively, the type names and entries already encoded (by
  // EntriesEncoder); `type_names` and `entries` are then empty. Lets a writer
  // of many small entries skip a record and a string per entry.
  std::string encoded_entries;
  // What the saved iterator hands out, one spec per component. Unset when
  // the writer did not know it (SaveIteratorShards takes a serialized state,
  // which does not carry it) or the index is of format 1.0.
  std::optional<std::vector<ComponentSpec>> element_spec;
};

// Encodes the type names and entries of an index, one field after the other,
// in the layout EncodeIndex gives them.
class EntriesEncoder {
 public:
  // `major_version` of the index the entries go into: from 2 on, every
  // tensor record carries its stream.
  EntriesEncoder(const std::vector<std::string>& type_names, uint64_t num_entries,
                 std::string* out, uint32_t major_version = kFormatMajorVersion);
  void Entry(uint32_t type_name_id, absl::string_view metadata, uint32_t num_tensors);
  // `shape` points to `rank` dimensions. `stream` must be 0 for a 1.x index.
  void Tensor(uint32_t dtype, TensorEncoding encoding, const int64_t* shape, int rank,
              uint32_t shard, uint64_t offset, uint64_t length, uint32_t crc32c,
              uint32_t stream = 0);

 private:
  std::string* out_;
  bool with_streams_;
};

// Serializes `index`, including the trailing CRC32C of the whole file.
std::string EncodeIndex(const CheckpointIndex& index);

// Parses and validates an index. `filename` only names the file in errors.
// Returns DataLoss for damaged or inconsistent content, Unimplemented for a
// newer major version. Never reads outside `data`.
absl::Status DecodeIndex(absl::string_view data, absl::string_view filename,
                         CheckpointIndex* index);

// Receives the entries of an index as DecodeIndexWith checks them, so that a
// reader can build its own structures without a record per tensor.
class IndexVisitor {
 public:
  virtual ~IndexVisitor() = default;
  virtual absl::Status Begin(std::vector<std::string> type_names, uint64_t num_entries) = 0;
  // `metadata` points into the decoded data.
  virtual absl::Status Entry(uint64_t e, uint32_t type_name_id, absl::string_view metadata,
                             uint32_t num_tensors) = 0;
  // Tensors of entry `e`, in order, after its Entry call.
  virtual absl::Status Tensor(uint64_t e, const TensorRecord& record) = 0;
};

// Like DecodeIndex, but hands the type names and entries to `visitor`
// instead of storing them in `index` (whose entries stay empty). Stops at the
// first error, the visitor's included.
absl::Status DecodeIndexWith(absl::string_view data, absl::string_view filename,
                             CheckpointIndex* index, IndexVisitor* visitor);

// Like DecodeIndex, but stops after the shard list: `index->entries` and
// `index->type_names` stay empty. For callers that only need the shard files.
absl::Status DecodeIndexShards(absl::string_view data, absl::string_view filename,
                               CheckpointIndex* index);

// First byte of each shard in the concatenation of all shards, plus the total
// as a last element.
std::vector<uint64_t> ShardStarts(const CheckpointIndex& index);
// The same for the shards of a referenced stream.
std::vector<uint64_t> ShardStarts(const std::vector<ShardRecord>& shards);

// A shard of a referenced stream that holds at least one referenced byte.
struct ReferencedShard {
  uint32_t stream;  // As in TensorRecord: >= 1.
  uint32_t shard;
  bool operator<(const ReferencedShard& o) const {
    return stream != o.stream ? stream < o.stream : shard < o.shard;
  }
  bool operator==(const ReferencedShard& o) const {
    return stream == o.stream && shard == o.shard;
  }
};

// The shards of referenced streams that [offset, offset + length) from
// `shard` of a stream with `starts` (ShardStarts) covers, appended to `out`.
// An empty range covers none. The range must lie inside the stream.
void AppendCoveredShards(uint32_t stream, const std::vector<uint64_t>& starts, uint32_t shard,
                         uint64_t offset, uint64_t length, std::vector<ReferencedShard>* out);

// Of a decoded index with entries: the sum of the lengths of its referenced
// tensors, and the referenced shards that hold them (sorted, unique).
uint64_t ReferencedBytes(const CheckpointIndex& index);
std::vector<ReferencedShard> ReferencedShards(const CheckpointIndex& index);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_FORMAT_CHECKPOINT_INDEX_H_
