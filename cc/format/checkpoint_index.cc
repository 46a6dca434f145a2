#include "cc/format/checkpoint_index.h"

#include <algorithm>
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
// Format 2.0 adds the tensor's stream (u32) to every tensor record.
constexpr size_t kMinTensorBytesWithStream = kMinTensorBytes + 4;
constexpr size_t kMinStreamBytes = 4;
constexpr size_t kMinStreamShardBytes = 4 + 8;
// The fixed-length tail of a shard name: ".data-<16 hex>-<5 digits>-of-<5 digits>".
constexpr size_t kShardSuffixBytes = 6 + 16 + 1 + 5 + 4 + 5;
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

// The nonce in a shard name, if the name ends like one of the writer's.
bool ShardNameNonce(absl::string_view name, uint64_t* nonce) {
  if (name.size() <= kShardSuffixBytes) return false;
  const absl::string_view suffix = name.substr(name.size() - kShardSuffixBytes);
  if (!absl::StartsWith(suffix, ".data-")) return false;
  uint64_t value = 0;
  for (const char c : suffix.substr(6, 16)) {
    int digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      digit = c - 'a' + 10;
    } else {
      return false;
    }
    value = (value << 4) | static_cast<uint64_t>(digit);
  }
  *nonce = value;
  return true;
}

// Indexes of major version 2 and of 1.1 on end their entries with the
// element spec section.
bool HasElementSpecSection(const CheckpointIndex& index) {
  return index.major_version >= kIncrementalMajorVersion || index.minor_version >= 1;
}

// The newest minor version this build knows of the index's major version:
// bytes after the known fields are damage unless the index is newer.
uint32_t KnownMinorVersion(uint32_t major_version) {
  return major_version == kIncrementalMajorVersion ? kIncrementalMinorVersion
                                                   : kFormatMinorVersion;
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
  const bool with_streams = index.major_version >= kIncrementalMajorVersion;
  if (with_streams) {
    w.U32(static_cast<uint32_t>(index.streams.size()));
    for (const StreamRecord& stream : index.streams) {
      w.U32(static_cast<uint32_t>(stream.shards.size()));
      for (const ShardRecord& shard : stream.shards) {
        w.Bytes(shard.name);
        w.U64(shard.size);
      }
    }
  }
  if (!index.encoded_entries.empty()) {
    out.reserve(out.size() + index.encoded_entries.size() + 4);
    w.Raw(index.encoded_entries);
  } else {
    EntriesEncoder encoder(index.type_names, index.entries.size(), &out, index.major_version);
    for (const EntryRecord& entry : index.entries) {
      encoder.Entry(entry.type_name_id, entry.metadata,
                    static_cast<uint32_t>(entry.tensors.size()));
      for (const TensorRecord& t : entry.tensors) {
        encoder.Tensor(t.dtype, t.encoding, t.shape.data(), static_cast<int>(t.shape.size()),
                       t.shard, t.offset, t.length, t.crc32c, t.stream);
      }
    }
  }
  // Format 1.0 (which tests still write) has no element spec section.
  if (HasElementSpecSection(index)) EncodeElementSpec(index.element_spec, &w);
  w.U32(Crc32c(out));
  return out;
}

EntriesEncoder::EntriesEncoder(const std::vector<std::string>& type_names,
                               uint64_t num_entries, std::string* out, uint32_t major_version)
    : out_(out), with_streams_(major_version >= kIncrementalMajorVersion) {
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
                            uint32_t crc32c, uint32_t stream) {
  // One append per record instead of one per field.
  char buf[4 + 1 + 1 + 8 * kMaxRank + 4 + 4 + 8 + 8 + 4];
  size_t n = 0;
  auto put = [&](uint64_t v, int width) {
    StoreLittleEndian(v, width, buf + n);
    n += width;
  };
  put(dtype, 4);
  put(static_cast<uint8_t>(encoding), 1);
  put(static_cast<uint8_t>(rank), 1);
  for (int d = 0; d < rank; ++d) put(static_cast<uint64_t>(shape[d]), 8);
  if (with_streams_) put(stream, 4);
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

// The magic, then the CRC32C that ends every format version, present and
// future: checked before the version, so that a damaged version field is
// damage, not a newer format. `covered` is what the CRC covers.
absl::Status CheckMagicAndChecksum(absl::string_view data, absl::string_view filename,
                                   absl::string_view* covered) {
  if (data.size() < kHeaderBytes + kCrcBytes ||
      std::memcmp(data.data(), kIndexMagic, sizeof(kIndexMagic)) != 0) {
    return Damaged(filename, "not a tfdata-checkpoint index (bad magic or too short)");
  }
  *covered = data.substr(0, data.size() - kCrcBytes);
  ByteReader crc_reader(data.substr(data.size() - kCrcBytes));
  uint32_t stored_crc = 0;
  crc_reader.U32(&stored_crc);
  if (Crc32c(*covered) != stored_crc) {
    return Damaged(filename, "checksum mismatch");
  }
  return absl::OkStatus();
}

// The header section: versions (an unknown major version is Unimplemented),
// the versions that wrote it, nonce, time and total size. `*rest` is left
// after it; a truncated header shows when the shard count is read.
absl::Status DecodeHeader(absl::string_view covered, absl::string_view filename,
                          CheckpointIndex* index, ByteReader* rest) {
  ByteReader header(covered.substr(sizeof(kIndexMagic)));
  header.U32(&index->major_version);
  header.U32(&index->minor_version);
  if (index->major_version != kFormatMajorVersion &&
      index->major_version != kIncrementalMajorVersion) {
    return absl::UnimplementedError(absl::StrCat(
        "Checkpoint index ", filename, " has format version ",
        index->major_version, ".", index->minor_version,
        "; this build of tfdata-checkpoint reads formats ", kFormatMajorVersion, ".x and ",
        kIncrementalMajorVersion, ".x only. Upgrade tfdata-checkpoint to read it."));
  }
  ByteReader r(covered.substr(kHeaderBytes));
  r.Bytes(&index->tf_version);
  r.Bytes(&index->library_version);
  r.U64(&index->nonce);
  r.I64(&index->created_unix_micros);
  r.U64(&index->total_bytes);
  *rest = r;
  return absl::OkStatus();
}

// The shard list: names that are this index's shards, sizes that add up to
// the total.
absl::Status DecodeShards(ByteReader* r, absl::string_view filename, CheckpointIndex* index) {
  uint32_t num_shards = 0;
  if (!r->U32(&num_shards)) return Damaged(filename, "truncated header");
  if (num_shards == 0 || num_shards > r->remaining() / kMinShardBytes) {
    return Damaged(filename, absl::StrCat("bad shard count ", num_shards));
  }
  index->shards.resize(num_shards);
  uint64_t shard_total = 0;
  for (ShardRecord& shard : index->shards) {
    if (!r->Bytes(&shard.name) || !r->U64(&shard.size) || !r->U32(&shard.crc32c)) {
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
  return absl::OkStatus();
}

// Format 2.0: the referenced streams, after the own shards. Each is the
// whole shard list of one earlier checkpoint: shard names of the writer's
// form with one nonce and one basename per stream, position and count as the
// names say; no name twice, none an own shard's (two streams, or a stream
// and the own shards, must never be the same files).
absl::Status DecodeStreams(ByteReader* r, absl::string_view filename, CheckpointIndex* index) {
  uint32_t num_streams = 0;
  if (!r->U32(&num_streams) || num_streams > r->remaining() / kMinStreamBytes) {
    return Damaged(filename, "bad referenced stream count");
  }
  index->streams.resize(num_streams);
  std::vector<absl::string_view> names;
  for (const ShardRecord& shard : index->shards) names.push_back(shard.name);
  for (uint32_t j = 0; j < num_streams; ++j) {
    StreamRecord& stream = index->streams[j];
    uint32_t num_shards = 0;
    if (!r->U32(&num_shards) || num_shards == 0 ||
        num_shards > r->remaining() / kMinStreamShardBytes) {
      return Damaged(filename, absl::StrCat("bad shard count in referenced stream ", j + 1));
    }
    stream.shards.resize(num_shards);
    uint64_t nonce = 0;
    absl::string_view basename;  // Of shard 0; every shard of a stream has it.
    uint64_t total = 0;
    for (uint32_t s = 0; s < num_shards; ++s) {
      ShardRecord& shard = stream.shards[s];
      if (!r->Bytes(&shard.name) || !r->U64(&shard.size)) {
        return Damaged(filename, absl::StrCat("truncated referenced stream ", j + 1));
      }
      if (s == 0 && ShardNameNonce(shard.name, &nonce)) {
        basename = absl::string_view(shard.name).substr(0, shard.name.size() - kShardSuffixBytes);
      }
      const absl::string_view name = shard.name;
      if (basename.empty() || name.find('/') != absl::string_view::npos ||
          !IsShardNameOf(name, nonce, s, num_shards) ||
          name.substr(0, name.size() - std::min(name.size(), kShardSuffixBytes)) != basename) {
        return Damaged(filename,
                       absl::StrCat("bad name for shard ", s, " of ", num_shards,
                                    " of referenced stream ", j + 1, " (",
                                    absl::CHexEscape(shard.name), ")"));
      }
      if (shard.size > UINT64_MAX - total) {
        return Damaged(filename, "referenced shard sizes overflow");
      }
      total += shard.size;
      names.push_back(shard.name);
    }
  }
  std::sort(names.begin(), names.end());
  if (std::adjacent_find(names.begin(), names.end()) != names.end()) {
    return Damaged(filename, "a shard file is listed twice (own or referenced)");
  }
  return absl::OkStatus();
}

// A referenced tensor's bytes in its stream, to check that no two overlap.
struct ReferencedSpan {
  uint32_t stream;
  uint64_t start;
  uint64_t end;
};

// What DecodeTensorRecord checks tensors against: where the own stream's
// shards start, where each referenced stream's do, how far the own tensors
// have tiled the own stream, and the referenced tensors seen so far.
struct LayoutCheck {
  bool with_streams = false;
  std::vector<uint64_t> own_starts;
  std::vector<std::vector<uint64_t>> stream_starts;
  uint64_t next = 0;
  std::vector<ReferencedSpan> referenced;
};

// One tensor record of entry `e`. An own tensor must start at `check->next`
// in the own stream (which it then moves past); a referenced one must lie
// inside its stream.
absl::Status DecodeTensorRecord(ByteReader* r, absl::string_view filename,
                                const CheckpointIndex& index, uint64_t e, LayoutCheck* check,
                                TensorRecord* t) {
  uint8_t encoding = 0, rank = 0;
  if (!r->U32(&t->dtype) || !r->U8(&encoding) || !r->U8(&rank)) {
    return Damaged(filename, absl::StrCat("truncated tensor in entry ", e));
  }
  if (encoding >= kNumEncodings) {
    return Damaged(filename, absl::StrCat("unknown tensor encoding ",
                                          static_cast<int>(encoding), " in entry ", e));
  }
  t->encoding = static_cast<TensorEncoding>(encoding);
  t->shape.resize(rank);
  for (int64_t& dim : t->shape) {
    if (!r->I64(&dim)) return Damaged(filename, "truncated tensor shape");
    if (dim < 0) {
      return Damaged(filename, absl::StrCat("negative dimension in entry ", e));
    }
  }
  t->stream = 0;
  if (check->with_streams && !r->U32(&t->stream)) {
    return Damaged(filename, absl::StrCat("truncated tensor in entry ", e));
  }
  if (!r->U32(&t->shard) || !r->U64(&t->offset) || !r->U64(&t->length) ||
      !r->U32(&t->crc32c)) {
    return Damaged(filename, absl::StrCat("truncated tensor in entry ", e));
  }
  if (t->stream > index.streams.size()) {
    return Damaged(filename,
                   absl::StrCat("tensor in entry ", e, " refers to stream ", t->stream,
                                " of ", index.streams.size()));
  }
  if (t->stream > 0) {
    const std::vector<ShardRecord>& shards = index.streams[t->stream - 1].shards;
    const std::vector<uint64_t>& starts = check->stream_starts[t->stream - 1];
    if (t->shard >= shards.size() || t->offset > shards[t->shard].size) {
      return Damaged(filename, absl::StrCat("referenced tensor in entry ", e,
                                            " points outside its stream"));
    }
    const uint64_t start = starts[t->shard] + t->offset;
    if (t->length > starts.back() - start) {
      return Damaged(filename, absl::StrCat("referenced tensor in entry ", e,
                                            " runs past its stream"));
    }
    if (t->length > 0) check->referenced.push_back({t->stream, start, start + t->length});
    return absl::OkStatus();
  }
  if (t->shard >= index.shards.size() || t->offset > index.shards[t->shard].size) {
    return Damaged(filename, absl::StrCat("tensor in entry ", e, " points outside the shards"));
  }
  const uint64_t global = check->own_starts[t->shard] + t->offset;
  // An empty tensor may sit at the start of the following shard.
  if (global != check->next) {
    return Damaged(filename,
                   absl::StrCat("tensor in entry ", e, " is not where the layout puts it"));
  }
  if (t->length > index.total_bytes - check->next) {
    return Damaged(filename, absl::StrCat("tensor in entry ", e, " runs past the shards"));
  }
  check->next += t->length;
  return absl::OkStatus();
}

// No byte of a referenced stream belongs to two tensors: the writer
// references a buffer once per save and writes later copies of it.
absl::Status CheckNoOverlap(absl::string_view filename, std::vector<ReferencedSpan>* spans) {
  std::sort(spans->begin(), spans->end(), [](const ReferencedSpan& a, const ReferencedSpan& b) {
    return a.stream != b.stream ? a.stream < b.stream : a.start < b.start;
  });
  for (size_t i = 1; i < spans->size(); ++i) {
    const ReferencedSpan& prev = (*spans)[i - 1];
    const ReferencedSpan& span = (*spans)[i];
    if (span.stream == prev.stream && span.start < prev.end) {
      return Damaged(filename, absl::StrCat("referenced tensors overlap in stream ",
                                            span.stream, " at byte ", span.start));
    }
  }
  return absl::OkStatus();
}

// The type names and the entries, handed to `visitor` as they are checked.
// Own tensors must tile the own shards exactly, in order: this is what the
// writer produces, and checking it bounds every read a reader will make.
// Referenced tensors must lie inside their streams, none overlapping another.
absl::Status DecodeEntries(ByteReader* r, absl::string_view filename,
                           const CheckpointIndex& index, IndexVisitor* visitor) {
  uint32_t num_type_names = 0;
  if (!r->U32(&num_type_names) || num_type_names > r->remaining() / kMinTypeNameBytes) {
    return Damaged(filename, "bad type name count");
  }
  std::vector<std::string> type_names(num_type_names);
  for (std::string& name : type_names) {
    if (!r->Bytes(&name)) return Damaged(filename, "truncated type names");
  }

  uint64_t num_entries = 0;
  if (!r->U64(&num_entries) || num_entries > r->remaining() / kMinEntryBytes) {
    return Damaged(filename, "bad entry count");
  }
  if (absl::Status s = visitor->Begin(std::move(type_names), num_entries); !s.ok()) {
    return s;
  }
  LayoutCheck check;
  check.with_streams = index.major_version >= kIncrementalMajorVersion;
  check.own_starts = ShardStarts(index);
  for (const StreamRecord& stream : index.streams) {
    check.stream_starts.push_back(ShardStarts(stream.shards));
  }
  const size_t min_tensor_bytes =
      check.with_streams ? kMinTensorBytesWithStream : kMinTensorBytes;
  TensorRecord t;
  for (uint64_t e = 0; e < num_entries; ++e) {
    uint32_t type_name_id = 0;
    absl::string_view metadata;
    uint32_t num_tensors = 0;
    if (!r->U32(&type_name_id) || !r->BytesView(&metadata) || !r->U32(&num_tensors)) {
      return Damaged(filename, absl::StrCat("truncated entry ", e));
    }
    if (type_name_id >= num_type_names) {
      return Damaged(filename, absl::StrCat("entry ", e, " has bad type name id"));
    }
    if (num_tensors > r->remaining() / min_tensor_bytes) {
      return Damaged(filename, absl::StrCat("entry ", e, " has bad tensor count"));
    }
    if (absl::Status s = visitor->Entry(e, type_name_id, metadata, num_tensors); !s.ok()) {
      return s;
    }
    for (uint32_t i = 0; i < num_tensors; ++i) {
      if (absl::Status s = DecodeTensorRecord(r, filename, index, e, &check, &t); !s.ok()) {
        return s;
      }
      if (absl::Status s = visitor->Tensor(e, t); !s.ok()) return s;
    }
  }
  if (check.next != index.total_bytes) {
    return Damaged(filename, "tensors do not cover the shards");
  }
  return CheckNoOverlap(filename, &check.referenced);
}

// The sections in the order docs/FORMAT.md gives them; `entries` false stops
// after the shard lists (own and referenced).
absl::Status Decode(absl::string_view data, absl::string_view filename, bool entries,
                    CheckpointIndex* index, IndexVisitor* visitor) {
  *index = CheckpointIndex();
  absl::string_view covered;
  if (absl::Status s = CheckMagicAndChecksum(data, filename, &covered); !s.ok()) return s;
  ByteReader r(absl::string_view{});
  if (absl::Status s = DecodeHeader(covered, filename, index, &r); !s.ok()) return s;
  if (absl::Status s = DecodeShards(&r, filename, index); !s.ok()) return s;
  if (index->major_version >= kIncrementalMajorVersion) {
    if (absl::Status s = DecodeStreams(&r, filename, index); !s.ok()) return s;
  }
  if (!entries) return absl::OkStatus();
  if (absl::Status s = DecodeEntries(&r, filename, *index, visitor); !s.ok()) return s;
  if (HasElementSpecSection(*index)) {
    if (absl::Status s = DecodeElementSpec(&r, filename, &index->element_spec); !s.ok()) {
      return s;
    }
  }
  // Newer minor versions may append fields that this reader does not know.
  if (r.remaining() != 0 && index->minor_version <= KnownMinorVersion(index->major_version)) {
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
  return ShardStarts(index.shards);
}

std::vector<uint64_t> ShardStarts(const std::vector<ShardRecord>& shards) {
  std::vector<uint64_t> starts;
  starts.reserve(shards.size() + 1);
  uint64_t pos = 0;
  for (const ShardRecord& shard : shards) {
    starts.push_back(pos);
    pos += shard.size;
  }
  starts.push_back(pos);
  return starts;
}

void AppendCoveredShards(uint32_t stream, const std::vector<uint64_t>& starts, uint32_t shard,
                         uint64_t offset, uint64_t length, std::vector<ReferencedShard>* out) {
  if (length == 0) return;
  const uint64_t end = starts[shard] + offset + length;
  // From the shard that holds the first byte (an offset at the very end of
  // a shard means the next one does) to the one that holds the last.
  for (size_t s = shard; s + 1 < starts.size() && starts[s] < end; ++s) {
    if (starts[s + 1] > starts[shard] + offset) {
      out->push_back({stream, static_cast<uint32_t>(s)});
    }
  }
}

uint64_t ReferencedBytes(const CheckpointIndex& index) {
  uint64_t total = 0;
  for (const EntryRecord& entry : index.entries) {
    for (const TensorRecord& t : entry.tensors) {
      if (t.stream > 0) total += t.length;
    }
  }
  return total;
}

std::vector<ReferencedShard> ReferencedShards(const CheckpointIndex& index) {
  std::vector<std::vector<uint64_t>> starts;
  for (const StreamRecord& stream : index.streams) starts.push_back(ShardStarts(stream.shards));
  std::vector<ReferencedShard> out;
  for (const EntryRecord& entry : index.entries) {
    for (const TensorRecord& t : entry.tensors) {
      if (t.stream == 0 || t.stream > starts.size()) continue;
      AppendCoveredShards(t.stream, starts[t.stream - 1], t.shard, t.offset, t.length, &out);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace tfdata_checkpoint
