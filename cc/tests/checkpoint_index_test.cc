#include "cc/format/checkpoint_index.h"

#include <cstdio>
#include <random>
#include <utility>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "cc/format/byte_codec.h"
#include "cc/format/crc32c.h"
#include "cc/tests/check.h"

namespace tfdata_checkpoint {
namespace {

CheckpointIndex SampleIndex() {
  CheckpointIndex index;
  index.tf_version = "2.15.1";
  index.library_version = "0.1.0";
  index.nonce = 0x1234;
  index.created_unix_micros = 99;
  index.type_names = {"tensorflow::Iterator"};
  index.shards = {{"p.data-0000000000001234-00000-of-00002", 6, 11},
                  {"p.data-0000000000001234-00001-of-00002", 4, 22}};
  index.total_bytes = 10;
  EntryRecord a;
  a.metadata = std::string("meta\0data", 9);
  TensorRecord t1;
  t1.dtype = 9;  // DT_INT64
  t1.shape = {1};
  t1.length = 8;
  t1.crc32c = 5;
  TensorRecord t2;
  t2.dtype = 7;  // DT_STRING
  t2.encoding = TensorEncoding::kStringList;
  t2.shape = {};
  t2.shard = 1;
  t2.offset = 2;
  t2.length = 2;
  a.tensors = {t1, t2};
  EntryRecord empty;
  index.entries = {a, empty};
  return index;
}

TFDC_TEST(RoundTrip) {
  const CheckpointIndex in = SampleIndex();
  CheckpointIndex out;
  const absl::Status s = DecodeIndex(EncodeIndex(in), "x.index", &out);
  CHECK_TRUE(s.ok());
  CHECK_EQ_VAL(out.nonce, in.nonce);
  CHECK_TRUE(out.tf_version == "2.15.1");
  CHECK_EQ_VAL(out.entries.size(), size_t{2});
  CHECK_TRUE(out.entries[0].metadata == in.entries[0].metadata);
  CHECK_EQ_VAL(out.entries[0].tensors[1].offset, uint64_t{2});
  CHECK_TRUE(out.entries[0].tensors[1].encoding == TensorEncoding::kStringList);
  CHECK_EQ_VAL(out.shards[1].crc32c, uint32_t{22});
}

std::vector<ComponentSpec> SampleElementSpec() {
  ComponentSpec scalar;
  scalar.dtype = 9;
  ComponentSpec partial;
  partial.dtype = 7;
  partial.dims = {-1, 3};
  ComponentSpec unknown;
  unknown.dtype = 21;  // DT_VARIANT
  unknown.unknown_rank = true;
  return {scalar, partial, unknown};
}

TFDC_TEST(ElementSpecRoundTrip) {
  CheckpointIndex in = SampleIndex();
  in.element_spec = SampleElementSpec();
  CheckpointIndex out;
  CHECK_TRUE(DecodeIndex(EncodeIndex(in), "x.index", &out).ok());
  CHECK_TRUE(out.element_spec.has_value());
  CHECK_EQ_VAL(out.element_spec->size(), size_t{3});
  CHECK_TRUE(!(*out.element_spec)[0].unknown_rank && (*out.element_spec)[0].dims.empty());
  CHECK_TRUE(((*out.element_spec)[1].dims == absl::InlinedVector<int64_t, 4>{-1, 3}));
  CHECK_TRUE((*out.element_spec)[2].unknown_rank);
  // Unknown (SaveIteratorShards) stays unknown; an empty spec stays empty.
  in.element_spec.reset();
  CHECK_TRUE(DecodeIndex(EncodeIndex(in), "x.index", &out).ok());
  CHECK_TRUE(!out.element_spec.has_value());
  in.element_spec = std::vector<ComponentSpec>();
  CHECK_TRUE(DecodeIndex(EncodeIndex(in), "x.index", &out).ok());
  CHECK_TRUE(out.element_spec.has_value() && out.element_spec->empty());
}

TFDC_TEST(Format10IndexesHaveNoElementSpecAndStillDecode) {
  CheckpointIndex in = SampleIndex();
  in.minor_version = 0;
  in.element_spec = SampleElementSpec();  // Not written: 1.0 has no such field.
  CheckpointIndex out;
  CHECK_TRUE(DecodeIndex(EncodeIndex(in), "x.index", &out).ok());
  CHECK_EQ_VAL(out.minor_version, uint32_t{0});
  CHECK_TRUE(!out.element_spec.has_value());
}

TFDC_TEST(NewerMinorVersionsMayAppendFields) {
  CheckpointIndex in = SampleIndex();
  in.minor_version = kFormatMinorVersion + 1;
  in.element_spec = SampleElementSpec();
  std::string data = EncodeIndex(in);
  // A field this reader does not know, with the checksum redone.
  data.resize(data.size() - 4);
  data += "future";
  std::string crc;
  ByteWriter(&crc).U32(Crc32c(data));
  CheckpointIndex out;
  CHECK_TRUE(DecodeIndex(data + crc, "x.index", &out).ok());
  CHECK_EQ_VAL(out.element_spec->size(), size_t{3});
  // The same bytes in an index of this reader's version are damage.
  in.minor_version = kFormatMinorVersion;
  data = EncodeIndex(in);
  data.resize(data.size() - 4);
  data += "future";
  crc.clear();
  ByteWriter(&crc).U32(Crc32c(data));
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(data + crc, "x.index", &out)));
}

TFDC_TEST(BadElementSpecIsDataLoss) {
  CheckpointIndex in = SampleIndex();
  in.element_spec = SampleElementSpec();
  const std::string good = EncodeIndex(in);
  // The spec section is the last 1 + 4 + (4 + 4) + (4 + 4 + 16) + (4 + 4)
  // bytes before the CRC: flag, count, then the components.
  const size_t spec_start = good.size() - 4 - 45;
  auto with = [&](size_t at, std::string bytes) {
    std::string data = good.substr(0, good.size() - 4);
    data.replace(at, bytes.size(), bytes);
    std::string crc;
    ByteWriter(&crc).U32(Crc32c(data));
    return data + crc;
  };
  CheckpointIndex out;
  CHECK_TRUE(DecodeIndex(with(spec_start, std::string(1, '\x01')), "x.index", &out).ok());
  // Flag neither 0 nor 1.
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(with(spec_start, "\x02"), "x.index", &out)));
  // A component count larger than the bytes left.
  CHECK_TRUE(absl::IsDataLoss(
      DecodeIndex(with(spec_start + 1, std::string("\xff\xff\xff\x7f", 4)), "x.index", &out)));
  // Rank -2, and rank 255.
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(
      with(spec_start + 5 + 4, std::string("\xfe\xff\xff\xff", 4)), "x.index", &out)));
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(
      with(spec_start + 5 + 4, std::string("\xff\x00\x00\x00", 4)), "x.index", &out)));
  // Dimension -2 in the second component.
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(
      with(spec_start + 5 + 8 + 8, std::string(8, '\xfe')), "x.index", &out)));
  // Truncated: the section cut short.
  std::string cut = good.substr(0, good.size() - 4 - 8);
  std::string crc;
  ByteWriter(&crc).U32(Crc32c(cut));
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(cut + crc, "x.index", &out)));
}

TFDC_TEST(PreEncodedEntriesGiveTheSameBytes) {
  const CheckpointIndex records = SampleIndex();
  CheckpointIndex encoded = records;
  encoded.type_names.clear();
  encoded.entries.clear();
  EntriesEncoder encoder(records.type_names, records.entries.size(),
                         &encoded.encoded_entries);
  for (const EntryRecord& entry : records.entries) {
    encoder.Entry(entry.type_name_id, entry.metadata,
                  static_cast<uint32_t>(entry.tensors.size()));
    for (const TensorRecord& t : entry.tensors) {
      encoder.Tensor(t.dtype, t.encoding, t.shape.data(), static_cast<int>(t.shape.size()),
                     t.shard, t.offset, t.length, t.crc32c);
    }
  }
  CHECK_TRUE(EncodeIndex(encoded) == EncodeIndex(records));
}

TFDC_TEST(EveryFlippedByteIsDetected) {
  const std::string bytes = EncodeIndex(SampleIndex());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] ^= 0x40;
    CheckpointIndex out;
    const absl::Status s = DecodeIndex(damaged, "x.index", &out);
    CHECK_TRUE(!s.ok());
  }
}

TFDC_TEST(EveryTruncationIsDetected) {
  const std::string bytes = EncodeIndex(SampleIndex());
  for (size_t n = 0; n < bytes.size(); ++n) {
    CheckpointIndex out;
    CHECK_TRUE(absl::IsDataLoss(DecodeIndex(bytes.substr(0, n), "x.index", &out)));
  }
}

TFDC_TEST(UnknownMajorVersionIsUnimplemented) {
  CheckpointIndex index = SampleIndex();
  index.major_version = 3;
  CheckpointIndex out;
  const absl::Status s = DecodeIndex(EncodeIndex(index), "x.index", &out);
  CHECK_TRUE(absl::IsUnimplemented(s));
  CHECK_TRUE(s.message().find("x.index") != absl::string_view::npos);
  CHECK_TRUE(s.message().find("format version 3.1") != absl::string_view::npos);
}

TFDC_TEST(DamagedVersionFieldIsDataLossNotANewerFormat) {
  const std::string good = EncodeIndex(SampleIndex());
  for (size_t offset = 8; offset < 16; ++offset) {
    std::string damaged = good;
    damaged[offset] ^= 0x02;
    CheckpointIndex out;
    CHECK_TRUE(absl::IsDataLoss(DecodeIndex(damaged, "x.index", &out)));
  }
}

TFDC_TEST(InconsistentLayoutIsRejectedEvenWithAGoodChecksum) {
  CheckpointIndex index = SampleIndex();
  index.entries[0].tensors[1].offset = 3;  // Leaves a gap.
  CheckpointIndex out;
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(EncodeIndex(index), "x.index", &out)));
  index = SampleIndex();
  index.shards[0].name = "../escape";
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(EncodeIndex(index), "x.index", &out)));
  index = SampleIndex();
  index.shards[0].name = "p.data-0000000000009999-00000-of-00002";  // another save's
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(EncodeIndex(index), "x.index", &out)));
  index = SampleIndex();
  std::swap(index.shards[0].name, index.shards[1].name);
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(EncodeIndex(index), "x.index", &out)));
  index = SampleIndex();
  index.shards[0].name = "checkpoint";  // not a shard at all
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(EncodeIndex(index), "x.index", &out)));
  index = SampleIndex();
  index.shards[0].name = "\x80.data-0000000000001234-00000-of-00002";  // not UTF-8
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(EncodeIndex(index), "x.index", &out)));
  index = SampleIndex();
  index.shards[0].name = "\xc3\xbc.data-0000000000001234-00000-of-00002";  // UTF-8
  CHECK_TRUE(DecodeIndex(EncodeIndex(index), "x.index", &out).ok());
  index = SampleIndex();
  index.total_bytes = 11;
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(EncodeIndex(index), "x.index", &out)));
  index = SampleIndex();
  index.entries[1].type_name_id = 3;
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(EncodeIndex(index), "x.index", &out)));
}

// Format 2.0: SampleIndex's own shards and tensors, plus two referenced
// streams: a tensor that crosses from shard 0 into shard 1 of the first, and
// one in the single shard of the second.
CheckpointIndex SampleIncrementalIndex() {
  CheckpointIndex index = SampleIndex();
  index.major_version = kIncrementalMajorVersion;
  index.minor_version = kIncrementalMinorVersion;
  index.element_spec = SampleElementSpec();
  StreamRecord first;
  first.shards = {{"p-1.data-00000000000000aa-00000-of-00002", 100, 0},
                  {"p-1.data-00000000000000aa-00001-of-00002", 50, 0}};
  StreamRecord second;
  second.shards = {{"p-0.data-00000000000000bb-00000-of-00001", 600, 0}};
  index.streams = {first, second};
  TensorRecord crossing;
  crossing.stream = 1;
  crossing.dtype = 1;  // DT_FLOAT
  crossing.shape = {5};
  crossing.shard = 0;
  crossing.offset = 90;
  crossing.length = 20;
  crossing.crc32c = 77;
  TensorRecord whole;
  whole.stream = 2;
  whole.dtype = 1;
  whole.shape = {128};
  whole.length = 512;
  whole.crc32c = 88;
  EntryRecord referencing;
  referencing.metadata = "it::buffer@@a@@b";
  referencing.tensors = {crossing, whole};
  index.entries.push_back(referencing);
  return index;
}

// Decodes `index` encoded; true when that is DataLoss naming the index.
bool IsRejected(const CheckpointIndex& index) {
  CheckpointIndex out;
  const absl::Status s = DecodeIndex(EncodeIndex(index), "x.index", &out);
  if (s.ok() || !absl::IsDataLoss(s) || s.message().find("x.index") == absl::string_view::npos) {
    std::printf("  got %s\n", s.ToString().c_str());
    return false;
  }
  return true;
}

TFDC_TEST(IncrementalIndexRoundTrip) {
  const CheckpointIndex in = SampleIncrementalIndex();
  CheckpointIndex out;
  const absl::Status s = DecodeIndex(EncodeIndex(in), "x.index", &out);
  if (!s.ok()) std::printf("  %s\n", s.ToString().c_str());
  CHECK_TRUE(s.ok());
  CHECK_EQ_VAL(out.major_version, uint32_t{2});
  CHECK_EQ_VAL(out.minor_version, uint32_t{0});
  CHECK_EQ_VAL(out.streams.size(), size_t{2});
  CHECK_TRUE(out.streams[0].shards[1].name == "p-1.data-00000000000000aa-00001-of-00002");
  CHECK_EQ_VAL(out.streams[1].shards[0].size, uint64_t{600});
  CHECK_EQ_VAL(out.entries.size(), size_t{3});
  CHECK_EQ_VAL(out.entries[0].tensors[1].stream, uint32_t{0});
  CHECK_EQ_VAL(out.entries[2].tensors[0].stream, uint32_t{1});
  CHECK_EQ_VAL(out.entries[2].tensors[0].offset, uint64_t{90});
  CHECK_EQ_VAL(out.entries[2].tensors[1].stream, uint32_t{2});
  CHECK_EQ_VAL(out.entries[2].tensors[1].crc32c, uint32_t{88});
  CHECK_TRUE(out.element_spec.has_value() && out.element_spec->size() == 3);
  CHECK_EQ_VAL(ReferencedBytes(out), uint64_t{532});
  // The crossing tensor needs both shards of stream 1; the other, stream 2's.
  const std::vector<ReferencedShard> shards = ReferencedShards(out);
  CHECK_EQ_VAL(shards.size(), size_t{3});
  CHECK_TRUE((shards[0] == ReferencedShard{1, 0}) && (shards[1] == ReferencedShard{1, 1}) &&
             (shards[2] == ReferencedShard{2, 0}));
  // The shard list alone carries the streams too.
  CheckpointIndex listed;
  CHECK_TRUE(DecodeIndexShards(EncodeIndex(in), "x.index", &listed).ok());
  CHECK_EQ_VAL(listed.streams.size(), size_t{2});
  CHECK_TRUE(listed.entries.empty());
}

TFDC_TEST(IncrementalPreEncodedEntriesGiveTheSameBytes) {
  const CheckpointIndex records = SampleIncrementalIndex();
  CheckpointIndex encoded = records;
  encoded.type_names.clear();
  encoded.entries.clear();
  EntriesEncoder encoder(records.type_names, records.entries.size(), &encoded.encoded_entries,
                         kIncrementalMajorVersion);
  for (const EntryRecord& entry : records.entries) {
    encoder.Entry(entry.type_name_id, entry.metadata,
                  static_cast<uint32_t>(entry.tensors.size()));
    for (const TensorRecord& t : entry.tensors) {
      encoder.Tensor(t.dtype, t.encoding, t.shape.data(), static_cast<int>(t.shape.size()),
                     t.shard, t.offset, t.length, t.crc32c, t.stream);
    }
  }
  CHECK_TRUE(EncodeIndex(encoded) == EncodeIndex(records));
}

TFDC_TEST(ReferencedTensorsMustLieInsideTheirStream) {
  CheckpointIndex index = SampleIncrementalIndex();
  index.entries[2].tensors[0].stream = 3;  // Only two streams.
  CHECK_TRUE(IsRejected(index));
  index = SampleIncrementalIndex();
  index.entries[2].tensors[0].shard = 2;  // Stream 1 has two shards.
  CHECK_TRUE(IsRejected(index));
  index = SampleIncrementalIndex();
  index.entries[2].tensors[0].offset = 101;  // Shard 0 has 100 bytes.
  CHECK_TRUE(IsRejected(index));
  index = SampleIncrementalIndex();
  index.entries[2].tensors[0].length = 61;  // 90 + 61 > 150.
  CHECK_TRUE(IsRejected(index));
  index = SampleIncrementalIndex();
  index.entries[2].tensors[1].length = 601;
  CHECK_TRUE(IsRejected(index));
  // Up to the very end is fine, also from the start of the next shard.
  index = SampleIncrementalIndex();
  index.entries[2].tensors[0].length = 60;
  CheckpointIndex out;
  CHECK_TRUE(DecodeIndex(EncodeIndex(index), "x.index", &out).ok());
  index.entries[2].tensors[0].offset = 100;
  index.entries[2].tensors[0].length = 50;
  CHECK_TRUE(DecodeIndex(EncodeIndex(index), "x.index", &out).ok());
  CHECK_EQ_VAL(ReferencedShards(out).size(), size_t{2});  // Only shard 1 of stream 1.
}

TFDC_TEST(ReferencedTensorsMustNotOverlap) {
  CheckpointIndex index = SampleIncrementalIndex();
  TensorRecord again = index.entries[2].tensors[0];
  again.offset = 109;  // Its last byte is the crossing tensor's first... 90 + 20 - 1.
  again.length = 1;
  index.entries[1].tensors.push_back(again);
  CHECK_TRUE(IsRejected(index));
  // Adjacent, not overlapping: fine.
  index.entries[1].tensors.back().offset = 110 - 100;
  index.entries[1].tensors.back().shard = 1;
  CheckpointIndex out;
  CHECK_TRUE(DecodeIndex(EncodeIndex(index), "x.index", &out).ok());
  // The same bytes in another stream are not an overlap.
  index.entries[1].tensors.back() = index.entries[2].tensors[1];
  index.entries[1].tensors.back().stream = 1;
  index.entries[1].tensors.back().length = 50;
  CHECK_TRUE(DecodeIndex(EncodeIndex(index), "x.index", &out).ok());
  // The very same tensor twice is.
  index.entries[1].tensors.back() = index.entries[2].tensors[1];
  CHECK_TRUE(IsRejected(index));
}

TFDC_TEST(OwnTensorsStillTileTheOwnShards) {
  CheckpointIndex index = SampleIncrementalIndex();
  index.entries[0].tensors[1].offset = 3;  // Leaves a gap in the own stream.
  CHECK_TRUE(IsRejected(index));
  index = SampleIncrementalIndex();
  index.entries[0].tensors[1].length = 1;  // Does not cover the own stream.
  CHECK_TRUE(IsRejected(index));
  // An own tensor turned into a reference leaves its bytes uncovered.
  index = SampleIncrementalIndex();
  index.entries[0].tensors[1].stream = 2;
  index.entries[0].tensors[1].offset = 512;
  CHECK_TRUE(IsRejected(index));
}

TFDC_TEST(BadReferencedStreamsAreDataLoss) {
  auto with_name = [](uint32_t stream, uint32_t shard, std::string name) {
    CheckpointIndex index = SampleIncrementalIndex();
    index.streams[stream].shards[shard].name = std::move(name);
    return index;
  };
  // Each shard's position and count must be what its name says.
  CHECK_TRUE(IsRejected(with_name(0, 1, "p-1.data-00000000000000aa-00000-of-00002")));
  CHECK_TRUE(IsRejected(with_name(0, 1, "p-1.data-00000000000000aa-00001-of-00003")));
  // One nonce and one basename per stream.
  CHECK_TRUE(IsRejected(with_name(0, 1, "p-1.data-00000000000000ab-00001-of-00002")));
  CHECK_TRUE(IsRejected(with_name(0, 1, "p-2.data-00000000000000aa-00001-of-00002")));
  // Not a shard name, a path, not lower-case hex, not UTF-8.
  CHECK_TRUE(IsRejected(with_name(1, 0, "checkpoint")));
  CHECK_TRUE(IsRejected(with_name(1, 0, "d/p-0.data-00000000000000bb-00000-of-00001")));
  CHECK_TRUE(IsRejected(with_name(1, 0, "p-0.data-00000000000000BB-00000-of-00001")));
  CHECK_TRUE(IsRejected(with_name(1, 0, "\x80.data-00000000000000bb-00000-of-00001")));
  CHECK_TRUE(IsRejected(with_name(1, 0, ".data-00000000000000bb-00000-of-00001")));
  // A stream that is the own shards, or another stream.
  CheckpointIndex index = SampleIncrementalIndex();
  index.streams[1].shards = index.shards;
  CHECK_TRUE(IsRejected(index));
  index = SampleIncrementalIndex();
  index.streams.push_back(index.streams[1]);
  CHECK_TRUE(IsRejected(index));
  // A stream without shards.
  index = SampleIncrementalIndex();
  index.streams.push_back(StreamRecord());
  CHECK_TRUE(IsRejected(index));
  // Sizes that overflow.
  index = SampleIncrementalIndex();
  index.streams[0].shards[0].size = UINT64_MAX;
  CHECK_TRUE(IsRejected(index));
  // A stream no tensor refers to is allowed (and costs no file).
  index = SampleIncrementalIndex();
  StreamRecord unused;
  unused.shards = {{"q.data-00000000000000cc-00000-of-00001", 9, 0}};
  index.streams.push_back(unused);
  CheckpointIndex out;
  CHECK_TRUE(DecodeIndex(EncodeIndex(index), "x.index", &out).ok());
  CHECK_EQ_VAL(ReferencedShards(out).size(), size_t{3});
}

TFDC_TEST(IncrementalIndexFlipsAndTruncationsAreDetected) {
  const std::string bytes = EncodeIndex(SampleIncrementalIndex());
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string damaged = bytes;
    damaged[i] ^= 0x40;
    CheckpointIndex out;
    CHECK_TRUE(!DecodeIndex(damaged, "x.index", &out).ok());
  }
  for (size_t n = 0; n < bytes.size(); ++n) {
    CheckpointIndex out;
    CHECK_TRUE(absl::IsDataLoss(DecodeIndex(bytes.substr(0, n), "x.index", &out)));
  }
}

TFDC_TEST(IncrementalNewerMinorVersionsMayAppendFields) {
  CheckpointIndex in = SampleIncrementalIndex();
  auto with_trailer = [](const CheckpointIndex& index) {
    std::string data = EncodeIndex(index);
    data.resize(data.size() - 4);
    data += "future";
    std::string crc;
    ByteWriter(&crc).U32(Crc32c(data));
    return data + crc;
  };
  CheckpointIndex out;
  CHECK_TRUE(absl::IsDataLoss(DecodeIndex(with_trailer(in), "x.index", &out)));
  in.minor_version = kIncrementalMinorVersion + 1;
  CHECK_TRUE(DecodeIndex(with_trailer(in), "x.index", &out).ok());
  CHECK_EQ_VAL(out.streams.size(), size_t{2});
}

TFDC_TEST(RandomBytesInAnIncrementalIndexNeverCrash) {
  std::mt19937_64 rng(11);
  const std::string good = EncodeIndex(SampleIncrementalIndex());
  for (int trial = 0; trial < 20000; ++trial) {
    std::string bytes = good;
    for (int k = 0; k < 4; ++k) bytes[8 + rng() % (bytes.size() - 8)] = static_cast<char>(rng());
    // With the checksum redone half the time, so that the structure checks run.
    if (trial % 2 == 0) {
      bytes.resize(bytes.size() - 4);
      std::string crc;
      ByteWriter(&crc).U32(Crc32c(bytes));
      bytes += crc;
    }
    CheckpointIndex out;
    DecodeIndex(bytes, "x.index", &out).IgnoreError();
  }
}

TFDC_TEST(RandomBytesNeverCrash) {
  std::mt19937_64 rng(7);
  const std::string good = EncodeIndex(SampleIndex());
  for (int trial = 0; trial < 20000; ++trial) {
    std::string bytes;
    if (trial % 2 == 0) {
      bytes.resize(rng() % 200);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {
      bytes = good;  // Keep the magic, scramble the rest.
      for (int k = 0; k < 4; ++k) bytes[8 + rng() % (bytes.size() - 8)] = static_cast<char>(rng());
    }
    CheckpointIndex out;
    CHECK_TRUE(!DecodeIndex(bytes, "x.index", &out).ok());
  }
}

}  // namespace
}  // namespace tfdata_checkpoint

TFDC_TEST_MAIN()
