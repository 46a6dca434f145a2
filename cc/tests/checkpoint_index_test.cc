#include "cc/format/checkpoint_index.h"

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
  index.major_version = 2;
  CheckpointIndex out;
  const absl::Status s = DecodeIndex(EncodeIndex(index), "x.index", &out);
  CHECK_TRUE(absl::IsUnimplemented(s));
  CHECK_TRUE(s.message().find("x.index") != absl::string_view::npos);
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
