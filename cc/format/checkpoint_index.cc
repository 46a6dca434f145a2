#include "cc/format/checkpoint_index.h"

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cc/format/byte_codec.h"
#include "cc/format/crc32c.h"

namespace tfdata_checkpoint {
namespace {

// Smallest encoded sizes, used to reject counts that cannot fit in the bytes
// left before anything is allocated for them.
constexpr size_t kMinShardBytes = 4 + 8 + 4;
constexpr size_t kMinTypeNameBytes = 4;
constexpr size_t kMinEntryBytes = 4 + 4 + 4;
constexpr size_t kMinTensorBytes = 4 + 1 + 1 + 4 + 8 + 8 + 4;
constexpr size_t kMinComponentBytes = 4 + 4;
// The rank written for a component of unknown rank.
constexpr int32_t kUnknownRank = -1;
constexpr size_t kHeaderBytes = sizeof(kIndexMagic) + 4 + 4;
constexpr size_t kCrcBytes = 4;

absl::Status Damaged(absl::string_view filename, absl::string_view what) {
  return absl::DataLossError(
      absl::StrCat("Damaged checkpoint index ", filename, ": ", what));
}

// Error messages and paths carry shard names, and Python decodes messages as
// UTF-8: a name that is not would turn a clean error into a crash there.
bool IsUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Sequence length and the range of the second byte (which rules out
    // overlong forms and surrogates, as Python's strict decoder does).
    int length = 0;
    unsigned char low = 0x80, high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      if (c == 0xE0) low = 0xA0;
      if (c == 0xED) high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      if (c == 0xF0) low = 0x90;
      if (c == 0xF4) high = 0x8F;
    } else {
      return false;
    }
    if (s.size() - i < static_cast<size_t>(length)) return false;
    const unsigned char second = static_cast<unsigned char>(s[i + 1]);
    if (second < low || second > high) return false;
    for (int k = 2; k < length; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += length;
  }
  return true;
}

// The writer names shard s of n "<prefix basename>.data-<nonce>-<s>-of-<n>";
// anything else would let an index point at files that are not its shards.
bool IsShardNameOf(absl::string_view name, uint64_t nonce, size_t shard, size_t num_shards) {
  const std::string suffix =
      absl::StrFormat(".data-%016x-%05d-of-%05d", nonce, shard, num_shards);
  return name.size() > suffix.size() && absl::EndsWith(name, suffix) && IsUtf8(name);
}

void EncodeElementSpec(const std::optional<std::vector<ComponentSpec>>& spec, ByteWriter* w) {
  w->U8(spec.has_value() ? 1 : 0);
  if (!spec.has_value()) return;
  w->U32(static_cast<uint32_t>(spec->size()));
  for (const ComponentSpec& component : *spec) {
    w->U32(component.dtype);
    w->U32(static_cast<uint32_t>(component.unknown_rank
                                     ? kUnknownRank
                                     : static_cast<int32_t>(component.dims.size())));
    if (component.unknown_rank) continue;
    for (int64_t dim : component.dims) w->I64(dim);
  }
}

// The element spec section (format 1.1): a flag, then the components.
absl::Status DecodeElementSpec(ByteReader* r, absl::string_view filename,
                               std::optional<std::vector<ComponentSpec>>* spec) {
  uint8_t recorded = 0;
  if (!r->U8(&recorded) || recorded > 1) {
    return Damaged(filename, "bad element spec flag");
  }
  if (recorded == 0) return absl::OkStatus();
  uint32_t num_components = 0;
  if (!r->U32(&num_components) || num_components > r->remaining() / kMinComponentBytes) {
    return Damaged(filename, "bad element spec component count");
  }
  std::vector<ComponentSpec> components(num_components);
  for (ComponentSpec& component : components) {
    uint32_t rank_bits = 0;
    if (!r->U32(&component.dtype) || !r->U32(&rank_bits)) {
      return Damaged(filename, "truncated element spec");
    }
    const int32_t rank = static_cast<int32_t>(rank_bits);
    if (rank == kUnknownRank) {
      component.unknown_rank = true;
      continue;
    }
    if (rank < 0 || rank > kMaxRank) {
      return Damaged(filename, absl::StrCat("bad element spec rank ", rank));
    }
    component.dims.resize(rank);
    for (int64_t& dim : component.dims) {
      if (!r->I64(&dim)) return Damaged(filename, "truncated element spec");
      if (dim < -1) return Damaged(filename, "bad element spec dimension");
    }
  }
  *spec = std::move(components);
  return absl::OkStatus();
}

}  // namespace

std::string DimsString(const ComponentSpec& component, absl::string_view separator,
                       absl::string_view unknown) {
  return absl::StrCat("[",
                      absl::StrJoin(component.dims, separator,
                                    [unknown](std::string* out, int64_t dim) {
                                      if (dim < 0) {
                                        out->append(unknown.data(), unknown.size());
                                      } else {
                                        absl::StrAppend(out, dim);
                                      }
                                    }),
                      "]");
}

std::string EncodeIndex(const CheckpointIndex& index) {
  std::string out;
  ByteWriter w(&out);
  w.Raw(absl::string_view(kIndexMagic, sizeof(kIndexMagic)));
  w.U32(index.major_version);
  w.U32(index.minor_version);
  w.Bytes(index.tf_version);
  w.Bytes(index.library_version);
  w.U64(index.nonce);
  w.I64(index.created_unix_micros);
  w.U64(index.total_bytes);
  w.U32(static_cast<uint32_t>(index.shards.size()));
  for (const ShardRecord& shard : index.shards) {
    w.Bytes(shard.name);
    w.U64(shard.size);
    w.U32(shard.crc32c);
  }
  if (!index.encoded_entries.empty()) {
    out.reserve(out.size() + index.encoded_entries.size() + 4);
    w.Raw(index.encoded_entries);
  } else {
    EntriesEncoder encoder(index.type_names, index.entries.size(), &out);
    for (const EntryRecord& entry : index.entries) {
      encoder.Entry(entry.type_name_id, entry.metadata,
                    static_cast<uint32_t>(entry.tensors.size()));
      for (const TensorRecord& t : entry.tensors) {
        encoder.Tensor(t.dtype, t.encoding, t.shape.data(), static_cast<int>(t.shape.size()),
                       t.shard, t.offset, t.length, t.crc32c);
      }
    }
  }
  // Format 1.0 (which tests still write) has no element spec section.
  if (index.minor_version >= 1) EncodeElementSpec(index.element_spec, &w);
  w.U32(Crc32c(out));
  return out;
}

EntriesEncoder::EntriesEncoder(const std::vector<std::string>& type_names,
                               uint64_t num_entries, std::string* out)
    : out_(out) {
  ByteWriter w(out_);
  w.U32(static_cast<uint32_t>(type_names.size()));
  for (const std::string& name : type_names) w.Bytes(name);
  w.U64(num_entries);
}

void EntriesEncoder::Entry(uint32_t type_name_id, absl::string_view metadata,
                           uint32_t num_tensors) {
  ByteWriter w(out_);
  w.U32(type_name_id);
  w.Bytes(metadata);
  w.U32(num_tensors);
}

void EntriesEncoder::Tensor(uint32_t dtype, TensorEncoding encoding, const int64_t* shape,
                            int rank, uint32_t shard, uint64_t offset, uint64_t length,
                            uint32_t crc32c) {
  // One append per record instead of one per field.
  char buf[4 + 1 + 1 + 8 * kMaxRank + 4 + 8 + 8 + 4];
  size_t n = 0;
  auto put = [&](uint64_t v, int width) {
    for (int i = 0; i < width; ++i) buf[n++] = static_cast<char>(v >> (8 * i));
  };
  put(dtype, 4);
  put(static_cast<uint8_t>(encoding), 1);
  put(static_cast<uint8_t>(rank), 1);
  for (int d = 0; d < rank; ++d) put(static_cast<uint64_t>(shape[d]), 8);
  put(shard, 4);
  put(offset, 8);
  put(length, 8);
  put(crc32c, 4);
  out_->append(buf, n);
}

namespace {

// Stores what it is handed in the index itself.
class RecordVisitor : public IndexVisitor {
 public:
  explicit RecordVisitor(CheckpointIndex* index) : index_(index) {}
  absl::Status Begin(std::vector<std::string> type_names, uint64_t num_entries) override {
    index_->type_names = std::move(type_names);
    index_->entries.resize(num_entries);
    return absl::OkStatus();
  }
  absl::Status Entry(uint64_t e, uint32_t type_name_id, absl::string_view metadata,
                     uint32_t num_tensors) override {
    EntryRecord& entry = index_->entries[e];
    entry.type_name_id = type_name_id;
    entry.metadata = std::string(metadata);
    entry.tensors.reserve(num_tensors);
    return absl::OkStatus();
  }
  absl::Status Tensor(uint64_t e, const TensorRecord& record) override {
    index_->entries[e].tensors.push_back(record);
    return absl::OkStatus();
  }

 private:
  CheckpointIndex* index_;
};

absl::Status Decode(absl::string_view data, absl::string_view filename, bool entries,
                    CheckpointIndex* index, IndexVisitor* visitor) {
  *index = CheckpointIndex();
  if (data.size() < kHeaderBytes + kCrcBytes ||
      std::memcmp(data.data(), kIndexMagic, sizeof(kIndexMagic)) != 0) {
    return Damaged(filename, "not a tfdata-checkpoint index (bad magic or too short)");
  }
  // Every format version ends with the CRC32C of all bytes before it, so the
  // checksum comes first: a damaged version field is damage, not a newer format.
  const absl::string_view covered = data.substr(0, data.size() - kCrcBytes);
  ByteReader crc_reader(data.substr(data.size() - kCrcBytes));
  uint32_t stored_crc = 0;
  crc_reader.U32(&stored_crc);
  if (Crc32c(covered) != stored_crc) {
    return Damaged(filename, "checksum mismatch");
  }
  ByteReader header(data.substr(sizeof(kIndexMagic)));
  header.U32(&index->major_version);
  header.U32(&index->minor_version);
  if (index->major_version != kFormatMajorVersion) {
    return absl::UnimplementedError(absl::StrCat(
        "Checkpoint index ", filename, " has format version ",
        index->major_version, ".", index->minor_version,
        "; this build of tfdata-checkpoint reads format ", kFormatMajorVersion,
        ".x only. Upgrade tfdata-checkpoint to read it."));
  }

  ByteReader r(covered.substr(kHeaderBytes));
  r.Bytes(&index->tf_version);
  r.Bytes(&index->library_version);
  r.U64(&index->nonce);
  r.I64(&index->created_unix_micros);
  r.U64(&index->total_bytes);
  uint32_t num_shards = 0;
  if (!r.U32(&num_shards)) return Damaged(filename, "truncated header");
  if (num_shards == 0 || num_shards > r.remaining() / kMinShardBytes) {
    return Damaged(filename, absl::StrCat("bad shard count ", num_shards));
  }
  index->shards.resize(num_shards);
  uint64_t shard_total = 0;
  for (ShardRecord& shard : index->shards) {
    if (!r.Bytes(&shard.name) || !r.U64(&shard.size) || !r.U32(&shard.crc32c)) {
      return Damaged(filename, "truncated shard list");
    }
    const size_t position = &shard - index->shards.data();
    if (shard.name.find('/') != std::string::npos ||
        !IsShardNameOf(shard.name, index->nonce, position, num_shards)) {
      return Damaged(filename, absl::StrCat("bad name for shard ", position, " of ", num_shards,
                                            " (", absl::CHexEscape(shard.name), ")"));
    }
    if (shard.size > UINT64_MAX - shard_total) {
      return Damaged(filename, "shard sizes overflow");
    }
    shard_total += shard.size;
  }
  if (shard_total != index->total_bytes) {
    return Damaged(filename, "shard sizes do not add up to the total");
  }
  if (!entries) return absl::OkStatus();
  const std::vector<uint64_t> starts = ShardStarts(*index);

  uint32_t num_type_names = 0;
  if (!r.U32(&num_type_names) ||
      num_type_names > r.remaining() / kMinTypeNameBytes) {
    return Damaged(filename, "bad type name count");
  }
  std::vector<std::string> type_names(num_type_names);
  for (std::string& name : type_names) {
    if (!r.Bytes(&name)) return Damaged(filename, "truncated type names");
  }

  uint64_t num_entries = 0;
  if (!r.U64(&num_entries) || num_entries > r.remaining() / kMinEntryBytes) {
    return Damaged(filename, "bad entry count");
  }
  if (absl::Status s = visitor->Begin(std::move(type_names), num_entries); !s.ok()) {
    return s;
  }
  // Tensors must tile the shards exactly, in order: this is what the writer
  // produces, and checking it bounds every read a reader will make.
  uint64_t next_global = 0;
  TensorRecord t;
  for (uint64_t e = 0; e < num_entries; ++e) {
    uint32_t type_name_id = 0;
    absl::string_view metadata;
    uint32_t num_tensors = 0;
    if (!r.U32(&type_name_id) || !r.BytesView(&metadata) || !r.U32(&num_tensors)) {
      return Damaged(filename, absl::StrCat("truncated entry ", e));
    }
    if (type_name_id >= num_type_names) {
      return Damaged(filename, absl::StrCat("entry ", e, " has bad type name id"));
    }
    if (num_tensors > r.remaining() / kMinTensorBytes) {
      return Damaged(filename, absl::StrCat("entry ", e, " has bad tensor count"));
    }
    if (absl::Status s = visitor->Entry(e, type_name_id, metadata, num_tensors); !s.ok()) {
      return s;
    }
    for (uint32_t i = 0; i < num_tensors; ++i) {
      uint8_t encoding = 0, rank = 0;
      if (!r.U32(&t.dtype) || !r.U8(&encoding) || !r.U8(&rank)) {
        return Damaged(filename, absl::StrCat("truncated tensor in entry ", e));
      }
      if (encoding >= kNumEncodings) {
        return Damaged(filename, absl::StrCat("unknown tensor encoding ",
                                              static_cast<int>(encoding),
                                              " in entry ", e));
      }
      t.encoding = static_cast<TensorEncoding>(encoding);
      t.shape.resize(rank);
      for (int64_t& dim : t.shape) {
        if (!r.I64(&dim)) return Damaged(filename, "truncated tensor shape");
        if (dim < 0) {
          return Damaged(filename, absl::StrCat("negative dimension in entry ", e));
        }
      }
      if (!r.U32(&t.shard) || !r.U64(&t.offset) || !r.U64(&t.length) ||
          !r.U32(&t.crc32c)) {
        return Damaged(filename, absl::StrCat("truncated tensor in entry ", e));
      }
      if (t.shard >= num_shards || t.offset > index->shards[t.shard].size) {
        return Damaged(filename,
                       absl::StrCat("tensor in entry ", e, " points outside the shards"));
      }
      const uint64_t global = starts[t.shard] + t.offset;
      // An empty tensor may sit at the start of the following shard.
      if (global != next_global) {
        return Damaged(filename, absl::StrCat("tensor in entry ", e,
                                              " is not where the layout puts it"));
      }
      if (t.length > index->total_bytes - next_global) {
        return Damaged(filename,
                       absl::StrCat("tensor in entry ", e, " runs past the shards"));
      }
      next_global += t.length;
      if (absl::Status s = visitor->Tensor(e, t); !s.ok()) return s;
    }
  }
  if (next_global != index->total_bytes) {
    return Damaged(filename, "tensors do not cover the shards");
  }
  if (index->minor_version >= 1) {
    if (absl::Status s = DecodeElementSpec(&r, filename, &index->element_spec); !s.ok()) {
      return s;
    }
  }
  // Newer minor versions may append fields that this reader does not know.
  if (r.remaining() != 0 && index->minor_version <= kFormatMinorVersion) {
    return Damaged(filename, "unexpected bytes after the entries");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status DecodeIndex(absl::string_view data, absl::string_view filename,
                         CheckpointIndex* index) {
  RecordVisitor visitor(index);
  return Decode(data, filename, /*entries=*/true, index, &visitor);
}

absl::Status DecodeIndexWith(absl::string_view data, absl::string_view filename,
                             CheckpointIndex* index, IndexVisitor* visitor) {
  return Decode(data, filename, /*entries=*/true, index, visitor);
}

absl::Status DecodeIndexShards(absl::string_view data, absl::string_view filename,
                               CheckpointIndex* index) {
  return Decode(data, filename, /*entries=*/false, index, /*visitor=*/nullptr);
}

std::vector<uint64_t> ShardStarts(const CheckpointIndex& index) {
  std::vector<uint64_t> starts;
  starts.reserve(index.shards.size() + 1);
  uint64_t pos = 0;
  for (const ShardRecord& shard : index.shards) {
    starts.push_back(pos);
    pos += shard.size;
  }
  starts.push_back(pos);
  return starts;
}

}  // namespace tfdata_checkpoint
