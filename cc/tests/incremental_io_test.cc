// Incremental saves against real files: the writer references what the base
// of its key holds, writes only the rest, and the reader and VerifyCheckpoint
// follow the references; damaged or missing referenced shards are named;
// every full-save trigger of the chain bound.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cc/format/checkpoint_index.h"
#include "cc/format/index_summary.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/checkpoint_reader.h"
#include "cc/io/checkpoint_writer.h"
#include "cc/io/incremental_bases.h"
#include "cc/io/index_file.h"
#include "cc/state/captured_state.h"
#include "cc/state/restored_state.h"
#include "cc/state/state_writer.h"
#include "cc/tests/check.h"
#include "cc/tests/io_test_util.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/platform/env.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::Env;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using testing::EditFile;
using testing::Floats;
using testing::Names;
using testing::SameState;
using testing::TempDir;

// One value of a captured state: what the iterator's Save would write.
struct Item {
  std::string name;
  Tensor tensor;
};

// A state like a shuffle buffer's: a counter (inline scalars, always
// written) and one entry per buffered element.
void Capture(const std::vector<Item>& items, CapturedState* state) {
  StateWriter writer(state);
  CHECK_TRUE(writer.WriteScalar("it::counter", "n", static_cast<int64_t>(items.size())).ok());
  for (const Item& item : items) {
    CHECK_TRUE(writer.WriteTensor(item.name, "t", item.tensor).ok());
  }
}

Tensor Strings(int n, int length, char c) {
  Tensor t(tensorflow::DT_STRING, TensorShape({n}));
  for (int i = 0; i < n; ++i) t.flat<tensorflow::tstring>()(i) = std::string(length + i, c);
  return t;
}

// Saves `items` with `key`; the report says what was written.
WriteReport Save(const std::vector<Item>& items, const std::string& prefix,
                 const std::string& key, int64_t num_shards = 0,
                 CapturedState* captured = nullptr) {
  CapturedState local;
  CapturedState* state = captured != nullptr ? captured : &local;
  Capture(items, state);
  WriteOptions options;
  options.fsync = false;
  options.num_shards = num_shards;
  options.incremental_key = key;
  WriteReport report;
  const absl::Status s = WriteCheckpoint(*state, prefix, options, &report);
  if (!s.ok()) std::printf("  WriteCheckpoint: %s\n", s.ToString().c_str());
  CHECK_TRUE(s.ok());
  return report;
}

// Restores `prefix` and compares it with `items`, then verifies it.
bool RestoresTo(const std::vector<Item>& items, const std::string& prefix) {
  CapturedState expected;
  Capture(items, &expected);
  RestoredState restored;
  const absl::Status s = ReadCheckpointState(prefix, &restored);
  if (!s.ok()) std::printf("  ReadCheckpointState: %s\n", s.ToString().c_str());
  CheckpointIndex index;
  const absl::Status v = VerifyCheckpoint(prefix, &index);
  if (!v.ok()) std::printf("  VerifyCheckpoint: %s\n", v.ToString().c_str());
  return s.ok() && v.ok() && SameState(expected, restored);
}

// Bytes of the own shard files of `prefix`, as they are on disk.
uint64_t OwnBytesOnDisk(const std::string& prefix) {
  CheckpointIndex index;
  CHECK_TRUE(ReadIndexShards(prefix, &index).ok());
  uint64_t total = 0;
  for (const ShardRecord& shard : index.shards) {
    uint64_t size = 0;
    CHECK_TRUE(Env::Default()->GetFileSize(ShardPath(prefix, shard.name), &size).ok());
    total += size;
  }
  return total;
}

CheckpointIndex Index(const std::string& prefix) {
  CheckpointIndex index;
  const absl::Status s = ReadIndexFile(prefix, &index);
  if (!s.ok()) std::printf("  ReadIndexFile: %s\n", s.ToString().c_str());
  return index;
}

// Element i: 1 KiB to 4 KiB of floats (every one large enough to reference).
std::vector<Item> Elements(int first, int count) {
  std::vector<Item> items;
  for (int i = first; i < first + count; ++i) {
    items.push_back({absl::StrCat("it::buffer_", i), Floats(256 * (1 + i % 4), i)});
  }
  return items;
}

uint64_t TensorBytes(const std::vector<Item>& items) {
  uint64_t total = 0;
  for (const Item& item : items) total += item.tensor.tensor_data().size();
  return total;
}

// The buffer after k more elements: the first k consumed, k new at the end.
std::vector<Item> Advance(const std::vector<Item>& items, const std::vector<Item>& fresh) {
  std::vector<Item> out(items.begin() + fresh.size(), items.end());
  out.insert(out.end(), fresh.begin(), fresh.end());
  return out;
}

constexpr uint64_t kCounterBytes = 8;  // The inline scalar Capture writes.

TFDC_TEST(FirstSaveIsFullTheNextWritesOnlyNewTensors) {
  TempDir dir;
  const std::string key = dir.path() + "/ckpt";
  const std::vector<Item> first = Elements(0, 40);
  const WriteReport full = Save(first, dir.path() + "/ckpt-1", key, /*num_shards=*/3);
  CHECK_TRUE(!full.incremental);
  CHECK_TRUE(absl::StrContains(full.full_reason, "no earlier checkpoint"));
  CHECK_EQ_VAL(Index(dir.path() + "/ckpt-1").major_version, uint32_t{1});

  const std::vector<Item> fresh = Elements(40, 5);
  const std::vector<Item> second = Advance(first, fresh);
  const WriteReport incremental = Save(second, dir.path() + "/ckpt-2", key, /*num_shards=*/2);
  CHECK_TRUE(incremental.incremental);
  CHECK_EQ_VAL(incremental.own_bytes, TensorBytes(fresh) + kCounterBytes);
  CHECK_EQ_VAL(OwnBytesOnDisk(dir.path() + "/ckpt-2"), TensorBytes(fresh) + kCounterBytes);
  CHECK_EQ_VAL(incremental.referenced_bytes, TensorBytes(second) - TensorBytes(fresh));
  const CheckpointIndex index = Index(dir.path() + "/ckpt-2");
  CHECK_EQ_VAL(index.major_version, uint32_t{2});
  CHECK_EQ_VAL(index.streams.size(), size_t{1});
  CHECK_EQ_VAL(ReferencedBytes(index), incremental.referenced_bytes);
  CHECK_TRUE(RestoresTo(second, dir.path() + "/ckpt-2"));
  CHECK_TRUE(RestoresTo(first, dir.path() + "/ckpt-1"));
  const std::string summary = IndexSummaryJson(index);
  CHECK_TRUE(absl::StrContains(summary, "\"format_version\": \"2.0\""));
  CHECK_TRUE(absl::StrContains(summary, absl::StrCat("\"own_bytes\": ", incremental.own_bytes)));
  CHECK_TRUE(absl::StrContains(summary, "\"referenced_files\": [\"ckpt-1.data-"));
  CHECK_TRUE(absl::StrContains(IndexSummaryJson(Index(dir.path() + "/ckpt-1")),
                               "\"referenced_bytes\": 0, \"referenced_files\": []"));
}

TFDC_TEST(AChainReferencesEveryCheckpointStillHoldingATensor) {
  TempDir dir;
  const std::string key = dir.path() + "/ckpt";
  std::vector<Item> items = Elements(0, 12);
  Save(items, dir.path() + "/ckpt-0", key, 2);
  for (int step = 1; step <= 5; ++step) {
    const std::vector<Item> fresh = Elements(100 * step, 2);
    items = Advance(items, fresh);
    const std::string prefix = absl::StrCat(dir.path(), "/ckpt-", step);
    const WriteReport report = Save(items, prefix, key, 1 + step % 3);
    CHECK_TRUE(report.incremental);
    CHECK_EQ_VAL(report.own_bytes, TensorBytes(fresh) + kCounterBytes);
    // References go to where the bytes are, never through a middle
    // checkpoint: the streams are those of the checkpoints whose tensors are
    // still in the buffer.
    const CheckpointIndex index = Index(prefix);
    CHECK_EQ_VAL(index.streams.size(), static_cast<size_t>(step <= 5 ? step : 5));
    CHECK_TRUE(RestoresTo(items, prefix));
  }
}

TFDC_TEST(StringTensorsAreReferencedToo) {
  TempDir dir;
  const std::string key = dir.path() + "/s";
  std::vector<Item> items = {{"it::a", Strings(8, 100, 'a')}, {"it::b", Strings(2, 300, 'b')},
                             {"it::small", Strings(1, 10, 'c')}};
  Save(items, dir.path() + "/s-1", key);
  items.push_back({"it::d", Strings(4, 200, 'd')});
  const WriteReport report = Save(items, dir.path() + "/s-2", key);
  CHECK_TRUE(report.incremental);
  // The small one (under kMinReferencedBytes) and the new one are written.
  CHECK_EQ_VAL(report.own_bytes, kCounterBytes + (8 + 10) + (4 * 8 + 200 + 201 + 202 + 203));
  CHECK_TRUE(RestoresTo(items, dir.path() + "/s-2"));
}

TFDC_TEST(ATensorReleasedFromTheBaseIsWrittenAgain) {
  TempDir dir;
  const std::string key = dir.path() + "/r";
  const Tensor x = Floats(1000, 7);  // Held by the test throughout.
  // y is much larger than x, so that referencing y alone is within the
  // space bound.
  const std::vector<Item> with_x = {{"it::x", x}, {"it::y", Floats(100000, 1)}};
  Save(with_x, dir.path() + "/r-1", key);
  // The next save does not hold x: the base (now r-2) lets go of it.
  const std::vector<Item> without_x = {{"it::y", with_x[1].tensor}};
  CHECK_TRUE(Save(without_x, dir.path() + "/r-2", key).incremental);
  // x is back, the very same buffer, but no base holds it any more: its
  // bytes on disk (in r-1) are not provably the same, so it is written.
  const std::vector<Item> again = {{"it::x", x}, {"it::y", with_x[1].tensor}};
  const WriteReport report = Save(again, dir.path() + "/r-3", key);
  CHECK_TRUE(report.incremental);
  CHECK_EQ_VAL(report.own_bytes, x.tensor_data().size() + kCounterBytes);
  CHECK_EQ_VAL(report.referenced_bytes, with_x[1].tensor.tensor_data().size());
  CHECK_TRUE(RestoresTo(again, dir.path() + "/r-3"));
}

TFDC_TEST(TheSameBufferTwiceIsReferencedOnce) {
  TempDir dir;
  const std::string key = dir.path() + "/d";
  const Tensor t = Floats(300, 2);
  Save({{"it::a", t}}, dir.path() + "/d-1", key);
  const std::vector<Item> twice = {{"it::a", t}, {"it::b", t}};
  const WriteReport report = Save(twice, dir.path() + "/d-2", key);
  CHECK_TRUE(report.incremental);
  CHECK_EQ_VAL(report.referenced_bytes, t.tensor_data().size());
  CHECK_EQ_VAL(report.own_bytes, t.tensor_data().size() + kCounterBytes);
  CHECK_TRUE(RestoresTo(twice, dir.path() + "/d-2"));
  // And the next save may reference both copies (one in each stream).
  const WriteReport next = Save(twice, dir.path() + "/d-3", key);
  CHECK_EQ_VAL(next.referenced_bytes, t.tensor_data().size());
  CHECK_TRUE(RestoresTo(twice, dir.path() + "/d-3"));
}

TFDC_TEST(ALargeReferencedTensorIsReadInRanges) {
  TempDir dir;
  const std::string key = dir.path() + "/l";
  // 36 MiB: more than one read range, across the bounds of three shards.
  const std::vector<Item> items = {{"it::small", Floats(200, 0)},
                                   {"it::big", Floats(9 << 20, 1)},
                                   {"it::after", Floats(300, 2)}};
  Save(items, dir.path() + "/l-1", key, /*num_shards=*/3);
  std::vector<Item> next = items;
  next.push_back({"it::new", Floats(400, 3)});
  CHECK_TRUE(Save(next, dir.path() + "/l-2", key).incremental);
  CHECK_TRUE(RestoresTo(next, dir.path() + "/l-2"));
}

// A base of two checkpoints: l-1 full, l-2 referencing it.
struct Chain {
  Chain() : key(dir.path() + "/c"), first(Elements(0, 10)) {
    Save(first, dir.path() + "/c-1", key, 2);
    second = Advance(first, Elements(50, 2));
    CHECK_TRUE(Save(second, dir.path() + "/c-2", key).incremental);
  }
  std::string ReferencedShardPath(size_t i) const {
    const CheckpointIndex index = Index(dir.path() + "/c-2");
    const std::vector<tfdata_checkpoint::ReferencedShard> shards = ReferencedShards(index);
    CHECK_TRUE(i < shards.size());
    const tfdata_checkpoint::ReferencedShard& r = shards[i];
    return ShardPath(dir.path() + "/c-2", index.streams[r.stream - 1].shards[r.shard].name);
  }

  TempDir dir;
  std::string key;
  std::vector<Item> first;
  std::vector<Item> second;
};

TFDC_TEST(ADamagedReferencedShardIsDataLossNamingIt) {
  Chain chain;
  const std::string shard = chain.ReferencedShardPath(1);
  EditFile(shard, [](std::string* b) { (*b)[b->size() / 2] ^= 0x20; });
  const std::string prefix = chain.dir.path() + "/c-2";
  RestoredState restored;
  const absl::Status s = ReadCheckpointState(prefix, &restored);
  CHECK_TRUE(Names(s, absl::StatusCode::kDataLoss, shard));
  CHECK_TRUE(absl::StrContains(s.message(), "entry"));
  CheckpointIndex index;
  CHECK_TRUE(Names(VerifyCheckpoint(prefix, &index), absl::StatusCode::kDataLoss, shard));
}

TFDC_TEST(AMissingReferencedShardIsNotFoundAndTheNextSaveIsFull) {
  Chain chain;
  const std::string shard = chain.ReferencedShardPath(0);
  CHECK_TRUE(Env::Default()->DeleteFile(shard).ok());
  const std::string prefix = chain.dir.path() + "/c-2";
  RestoredState restored;
  const absl::Status s = ReadCheckpointState(prefix, &restored);
  CHECK_TRUE(Names(s, absl::StatusCode::kNotFound, shard));
  CHECK_TRUE(absl::StrContains(s.message(), "of checkpoint " + prefix + " is missing"));
  CheckpointIndex index;
  CHECK_TRUE(Names(VerifyCheckpoint(prefix, &index), absl::StatusCode::kNotFound, shard));
  // A save never references bytes that are not there.
  const WriteReport report = Save(chain.second, chain.dir.path() + "/c-3", chain.key);
  CHECK_TRUE(!report.incremental);
  CHECK_TRUE(absl::StrContains(report.full_reason, shard));
  CHECK_TRUE(RestoresTo(chain.second, chain.dir.path() + "/c-3"));
}

TFDC_TEST(AReferencedShardOfAnotherSizeMakesTheNextSaveFull) {
  Chain chain;
  const std::string shard = chain.ReferencedShardPath(0);
  EditFile(shard, [](std::string* b) { b->push_back('x'); });
  RestoredState restored;
  CHECK_TRUE(Names(ReadCheckpointState(chain.dir.path() + "/c-2", &restored),
                   absl::StatusCode::kDataLoss, shard));
  const WriteReport report = Save(chain.second, chain.dir.path() + "/c-3", chain.key);
  CHECK_TRUE(!report.incremental);
  CHECK_TRUE(absl::StrContains(report.full_reason, "bytes, not"));
}

TFDC_TEST(AFailedSaveLeavesTheBase) {
  Chain chain;
  CapturedState state;
  Capture(chain.second, &state);
  WriteOptions options;
  options.incremental_key = chain.key;
  options.num_shards = 70000;  // More than a checkpoint may have.
  CHECK_TRUE(absl::IsInvalidArgument(
      WriteCheckpoint(state, chain.dir.path() + "/c-3", options)));
  // The base is still c-2: the next save references its tensors.
  const WriteReport report = Save(chain.second, chain.dir.path() + "/c-4", chain.key);
  CHECK_TRUE(report.incremental);
  CHECK_EQ_VAL(report.own_bytes, kCounterBytes);
}

TFDC_TEST(ReleaseDropsTheBase) {
  Chain chain;
  IncrementalBases::Global()->Release(chain.key);
  IncrementalBases::Global()->Release(chain.key + "/never-used");  // No error.
  const WriteReport report = Save(chain.second, chain.dir.path() + "/c-3", chain.key);
  CHECK_TRUE(!report.incremental);
  // The full save is the new base.
  CHECK_TRUE(Save(chain.second, chain.dir.path() + "/c-4", chain.key).incremental);
}

TFDC_TEST(ASaveRunningAcrossAReleaseDoesNotBringTheBaseBack) {
  const std::string key = "generation-test";
  IncrementalBases::Lookup before = IncrementalBases::Global()->Get(key);
  CHECK_TRUE(before.base == nullptr);
  IncrementalBases::Global()->Release(key);
  auto base = std::make_shared<IncrementalBase>("/d/p", std::vector<StreamRecord>(1));
  base->Finish();
  IncrementalBases::Global()->Set(key, base, before.generation);
  CHECK_TRUE(IncrementalBases::Global()->Get(key).base == nullptr);
  const IncrementalBases::Lookup after = IncrementalBases::Global()->Get(key);
  IncrementalBases::Global()->Set(key, base, after.generation);
  CHECK_TRUE(IncrementalBases::Global()->Get(key).base == base);
  IncrementalBases::Global()->Release(key);
}

TFDC_TEST(WithoutAKeyNothingIsReferencedAndTheBaseStays) {
  Chain chain;
  CapturedState state;
  Capture(chain.second, &state);
  WriteOptions options;
  options.fsync = false;
  WriteReport report;
  CHECK_TRUE(WriteCheckpoint(state, chain.dir.path() + "/plain", options, &report).ok());
  CHECK_TRUE(!report.incremental);
  CHECK_EQ_VAL(Index(chain.dir.path() + "/plain").major_version, uint32_t{1});
  CHECK_EQ_VAL(Index(chain.dir.path() + "/plain").minor_version, uint32_t{1});
  CHECK_TRUE(Save(chain.second, chain.dir.path() + "/c-3", chain.key).incremental);
}

TFDC_TEST(FullSaveTriggers) {
  TempDir dir;
  TempDir other;
  const std::string key = dir.path() + "/f";
  const std::vector<Item> items = Elements(0, 6);
  Save(items, dir.path() + "/f-1", key);
  // Nothing of the base left in the state.
  WriteReport report = Save(Elements(10, 3), dir.path() + "/f-2", key);
  CHECK_TRUE(!report.incremental && absl::StrContains(report.full_reason, "no tensor"));
  // Another directory.
  const std::vector<Item> next = Elements(10, 3);
  report = Save(next, other.path() + "/f-3", key);
  CHECK_TRUE(!report.incremental && absl::StrContains(report.full_reason, "another directory"));
  // The prefix of the base itself: it replaces it, written in full, and the
  // replaced checkpoint's shards go as they always have.
  const std::string replaced_shard = ShardPath(other.path() + "/f-3",
                                               Index(other.path() + "/f-3").shards[0].name);
  report = Save(next, other.path() + "/f-3", key);
  CHECK_TRUE(!report.incremental && absl::StrContains(report.full_reason, "replaces"));
  CHECK_TRUE(absl::IsNotFound(Env::Default()->FileExists(replaced_shard)));
  CHECK_TRUE(RestoresTo(next, other.path() + "/f-3"));
}

TFDC_TEST(TheSpaceBoundWritesInFull) {
  TempDir dir;
  const std::string key = dir.path() + "/a";
  const Tensor kept = Floats(256 << 10, 1);  // 1 MiB.
  const std::vector<Item> items = {{"it::kept", kept}, {"it::gone", Floats(512 << 10, 2)}};
  Save(items, dir.path() + "/a-1", key, /*num_shards=*/1);
  // Referencing 1 MiB would keep the whole 3 MiB shard alive for it: more
  // than twice the state.
  const std::vector<Item> next = {{"it::kept", kept}, {"it::new", Floats(200, 3)}};
  const WriteReport report = Save(next, dir.path() + "/a-2", key);
  CHECK_TRUE(!report.incremental && absl::StrContains(report.full_reason, "2x"));
  CHECK_EQ_VAL(report.own_bytes, TensorBytes(next) + kCounterBytes);
  CHECK_TRUE(RestoresTo(next, dir.path() + "/a-2"));
  // The full save became the base.
  CHECK_TRUE(Save(next, dir.path() + "/a-3", key).incremental);
}

TFDC_TEST(AtMostSixteenStreams) {
  TempDir dir;
  const std::string key = dir.path() + "/m";
  // Save k adds element k: save k references the k earlier checkpoints.
  std::vector<Item> items;
  std::vector<Item> at_the_bound;
  for (int k = 0; k <= static_cast<int>(kMaxReferencedStreams) + 1; ++k) {
    items.push_back(Elements(k, 1)[0]);
    if (k == static_cast<int>(kMaxReferencedStreams)) at_the_bound = items;
    const WriteReport report = Save(items, absl::StrCat(dir.path(), "/m-", k), key);
    CHECK_EQ_VAL(report.incremental,
                 k >= 1 && k <= static_cast<int>(kMaxReferencedStreams));
    if (k == static_cast<int>(kMaxReferencedStreams) + 1) {
      CHECK_TRUE(absl::StrContains(report.full_reason, "17 earlier checkpoints"));
    }
  }
  CHECK_TRUE(RestoresTo(at_the_bound, absl::StrCat(dir.path(), "/m-", kMaxReferencedStreams)));
  CHECK_EQ_VAL(Index(absl::StrCat(dir.path(), "/m-", kMaxReferencedStreams)).streams.size(),
               kMaxReferencedStreams);
}

TFDC_TEST(ReplacingACheckpointKeepsTheShardsOthersReference) {
  TempDir dir;
  const std::string key = dir.path() + "/k";
  const std::vector<Item> first = Elements(0, 8);
  Save(first, dir.path() + "/k-1", key, 2);
  const std::vector<Item> second = Advance(first, Elements(20, 2));
  CHECK_TRUE(Save(second, dir.path() + "/k-2", key).incremental);
  // k-1 again, from the base k-2: the old k-1's own shards that k-2 and the
  // new k-1 reference must stay.
  const std::vector<Item> third = Advance(second, Elements(30, 2));
  const WriteReport report = Save(third, dir.path() + "/k-1", key);
  CHECK_TRUE(report.incremental);
  CHECK_TRUE(RestoresTo(second, dir.path() + "/k-2"));
  CHECK_TRUE(RestoresTo(third, dir.path() + "/k-1"));
}

// Like a shuffle buffer's slots: each element with an int64 scalar beside
// it, so that no two referenced tensors are adjacent in their stream.
void CaptureSlots(const std::vector<Item>& items, CapturedState* state) {
  StateWriter writer(state);
  for (const Item& item : items) {
    CHECK_TRUE(writer.WriteScalar(item.name, "size", 1).ok());
    CHECK_TRUE(writer.WriteTensor(item.name, "t", item.tensor).ok());
  }
}

TFDC_TEST(ScatteredReferencesAreReadAndCheckedPieceByPiece) {
  TempDir dir;
  const std::string key = dir.path() + "/s";
  const std::vector<Item> items = Elements(0, 60);
  CapturedState first;
  CaptureSlots(items, &first);
  WriteOptions options;
  options.fsync = false;
  options.incremental_key = key;
  options.num_shards = 3;
  CHECK_TRUE(WriteCheckpoint(first, dir.path() + "/s-1", options).ok());
  // Every third element consumed: the referenced pieces are scattered over
  // the three shards, with gaps of every size.
  std::vector<Item> kept;
  for (size_t i = 0; i < items.size(); ++i) {
    if (i % 3 != 1) kept.push_back(items[i]);
  }
  CapturedState second;
  CaptureSlots(kept, &second);
  WriteReport report;
  options.num_shards = 1;
  CHECK_TRUE(WriteCheckpoint(second, dir.path() + "/s-2", options, &report).ok());
  CHECK_TRUE(report.incremental);
  CHECK_EQ_VAL(report.own_bytes, kCounterBytes * kept.size());
  RestoredState restored;
  CHECK_TRUE(ReadCheckpointState(dir.path() + "/s-2", &restored).ok());
  CHECK_TRUE(SameState(second, restored));
  // The gaps between the referenced pieces are read and dropped: a damaged
  // byte of a consumed element (entry 1 of s-1) is no part of s-2.
  {
    const CheckpointIndex base = Index(dir.path() + "/s-1");
    const TensorRecord& gap = base.entries[1].tensors[1];
    CHECK_EQ_VAL(gap.length, static_cast<uint64_t>(items[1].tensor.tensor_data().size()));
    EditFile(ShardPath(dir.path() + "/s-1", base.shards[gap.shard].name),
             [&](std::string* b) { (*b)[gap.offset + 5] ^= 0x01; });
    RestoredState again;
    CHECK_TRUE(ReadCheckpointState(dir.path() + "/s-2", &again).ok());
    CHECK_TRUE(SameState(second, again));
  }
  // Damage the tensor of entry 17 where it lies: the error names its entry
  // and the shard it is in.
  const CheckpointIndex index = Index(dir.path() + "/s-2");
  const TensorRecord& t = index.entries[17].tensors[1];
  CHECK_TRUE(t.stream == 1);
  const std::string shard =
      ShardPath(dir.path() + "/s-2", index.streams[0].shards[t.shard].name);
  EditFile(shard, [&](std::string* b) {
    CHECK_TRUE(t.offset + 5 < b->size());
    if (t.offset + 5 < b->size()) (*b)[t.offset + 5] ^= 0x01;
  });
  RestoredState damaged;
  const absl::Status s = ReadCheckpointState(dir.path() + "/s-2", &damaged);
  CHECK_TRUE(Names(s, absl::StatusCode::kDataLoss, shard));
  CHECK_TRUE(absl::StrContains(s.message(), "entry 17 "));
}

TFDC_TEST(MemoryPerHeldTensor) {
  TempDir dir;
  const std::string key = dir.path() + "/mem";
  const std::vector<Item> items = Elements(0, 4096);
  Save(items, dir.path() + "/mem-1", key);
  const IncrementalBases::Lookup lookup = IncrementalBases::Global()->Get(key);
  CHECK_TRUE(lookup.base != nullptr && lookup.base->size() == items.size());
  const double per_tensor = static_cast<double>(lookup.base->MemoryBytes()) / items.size();
  std::printf("  base memory: %zu bytes for %zu held tensors = %.1f bytes each "
              "(sizeof(HeldTensor) = %zu)\n",
              lookup.base->MemoryBytes(), lookup.base->size(), per_tensor, sizeof(HeldTensor));
  CHECK_TRUE(per_tensor < 128);
  IncrementalBases::Global()->Release(key);
}

}  // namespace
}  // namespace tfdata_checkpoint

TFDC_TEST_MAIN()
