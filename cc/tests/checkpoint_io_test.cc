// cc/io against real files: checkpoints written through the writer into a
// temporary directory and read back through the reader and the range reader,
// damaged on disk, and the path helpers they are named by.
#include <stdlib.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cc/format/checkpoint_index.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/checkpoint_reader.h"
#include "cc/io/checkpoint_writer.h"
#include "cc/io/index_file.h"
#include "cc/io/range_reader.h"
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

// Pieces of every kind: inline scalars, small and large raw tensors (staged
// and direct reads), an empty tensor, strings, and entries that cross shards.
void FillState(CapturedState* state) {
  StateWriter writer(state);
  CHECK_TRUE(writer.WriteScalar("it::counter", "n", 42).ok());
  CHECK_TRUE(writer.WriteTensor("it::buffer", "big", Floats(100000, 0.5f)).ok());
  CHECK_TRUE(writer.WriteTensor("it::buffer", "empty", Floats(0, 0)).ok());
  for (int i = 0; i < 50; ++i) {
    CHECK_TRUE(writer.WriteTensor(absl::StrCat("it::slot", i), "t", Floats(1 + i, i)).ok());
    CHECK_TRUE(writer.WriteScalar(absl::StrCat("it::slot", i), "s",
                                  tensorflow::tstring(std::string(i, 'x')))
                   .ok());
  }
  CHECK_TRUE(writer.WriteScalar("it::counter", "last", -1).ok());
}

// Writes a checkpoint of FillState at `prefix` with `num_shards` shards.
void Save(const CapturedState& state, const std::string& prefix, int64_t num_shards) {
  WriteOptions options;
  options.num_shards = num_shards;
  options.fsync = false;
  const absl::Status s = WriteCheckpoint(state, prefix, options);
  if (!s.ok()) std::printf("  WriteCheckpoint: %s\n", s.ToString().c_str());
  CHECK_TRUE(s.ok());
}

// A checkpoint of FillState saved with `num_shards` shards in a fresh
// directory, as most tests start.
struct Saved {
  explicit Saved(int64_t num_shards) : prefix(dir.path() + "/ckpt") {
    CHECK_TRUE(!dir.path().empty());
    FillState(&state);
    Save(state, prefix, num_shards);
  }

  TempDir dir;
  CapturedState state;
  std::string prefix;
};

std::string ShardOf(const std::string& prefix, size_t s) {
  CheckpointIndex index;
  CHECK_TRUE(ReadIndexShards(prefix, &index).ok());
  return s < index.shards.size() ? ShardPath(prefix, index.shards[s].name) : "";
}

TFDC_TEST(PathsOfACheckpoint) {
  CHECK_TRUE(IndexPath("/d/ckpt-3") == "/d/ckpt-3.index");
  CHECK_TRUE(TempIndexPath("/d/ckpt", 0xabc) == "/d/ckpt.index.tmp-0000000000000abc");
  CHECK_TRUE(ShardName("/d/ckpt", 0xabc, 2, 10) == "ckpt.data-0000000000000abc-00002-of-00010");
  CHECK_TRUE(ShardPath("/d/ckpt", "ckpt.data-x") == "/d/ckpt.data-x");
  CHECK_TRUE(ShardPath("ckpt", "ckpt.data-x") == "ckpt.data-x");
  CHECK_TRUE(PrefixDirectory("/d/e/ckpt") == "/d/e");
  CHECK_TRUE(PrefixDirectory("/ckpt") == "/");
  CHECK_TRUE(PrefixDirectory("ckpt") == "");
  CHECK_TRUE(PrefixDirectory("gs://bucket") == "gs://");
  CHECK_TRUE(PrefixDirectory("gs://bucket/ckpt") == "gs://bucket");
  CHECK_TRUE(BackgroundSaveKey("/d/e//") == "/d/e");
  CHECK_TRUE(BackgroundSaveKey("/d/x/../e") == "/d/e");
  CHECK_TRUE(BackgroundSaveKey("file:///d/e/") == "/d/e");
  CHECK_TRUE(BackgroundSaveKey("/") == "/");
  CHECK_TRUE(BackgroundSaveKey("gs://b/x/../y/") == "gs://b/y");
  CHECK_TRUE(IsLocalPath("/d/ckpt") && IsLocalPath("file:///d/ckpt"));
  CHECK_TRUE(!IsLocalPath("gs://bucket/ckpt") && !IsLocalPath("ram://ckpt"));
  const absl::Status annotated = Annotate(absl::DataLossError("bad"), "reading", "/d/f");
  CHECK_TRUE(absl::IsDataLoss(annotated) && annotated.message() == "reading /d/f: bad");
  CHECK_TRUE(Annotate(absl::OkStatus(), "reading", "/d/f").ok());
}

TFDC_TEST(RoundTripThroughTheWriterAndTheReader) {
  TempDir dir;
  CHECK_TRUE(!dir.path().empty());
  CapturedState state;
  FillState(&state);
  for (int64_t num_shards : {1, 3, 7, 64}) {
    const std::string prefix = absl::StrCat(dir.path(), "/sub/ckpt-", num_shards);
    Save(state, prefix, num_shards);
    RestoredState restored;
    const absl::Status s = ReadCheckpointState(prefix, &restored);
    CHECK_TRUE(s.ok());
    CHECK_TRUE(SameState(state, restored));
    CheckpointIndex index;
    CHECK_TRUE(VerifyCheckpoint(prefix, &index).ok());
    CHECK_EQ_VAL(index.shards.size(), static_cast<size_t>(num_shards));
    CHECK_EQ_VAL(index.entries.size(), state.entries().size());
  }
}

TFDC_TEST(RangeReaderFillsTheDestinations) {
  Saved saved(5);
  const std::string& prefix = saved.prefix;
  CheckpointIndex index;
  CHECK_TRUE(ReadIndexFile(prefix, &index).ok());
  ReadLayout layout = VerificationLayout(index);
  CHECK_EQ_VAL(layout.pieces.total_bytes(), index.total_bytes);
  CHECK_TRUE(ReadShards(prefix, index, layout).ok());
  // The whole stream into one buffer: it is the shards end to end.
  std::string stream(index.total_bytes, '\0');
  for (size_t p = 0; p < layout.pieces.num_pieces(); ++p) {
    layout.destination[p] = stream.data() + layout.pieces.start(p);
  }
  CHECK_TRUE(ReadShards(prefix, index, layout).ok());
  std::string shards;
  for (const ShardRecord& shard : index.shards) {
    std::string bytes;
    CHECK_TRUE(tensorflow::ReadFileToString(Env::Default(), ShardPath(prefix, shard.name),
                                            &bytes)
                   .ok());
    shards += bytes;
  }
  CHECK_TRUE(stream == shards);
  // Entry 0 holds it::counter's two int64 scalars (16 bytes); entry 1 starts
  // with the big tensor.
  const Tensor big = saved.state.entries()[1].values[0].tensor;
  CHECK_TRUE(absl::string_view(stream).substr(16, big.tensor_data().size()) ==
             big.tensor_data());
}

TFDC_TEST(DamagedShardIsDataLossNamingIt) {
  Saved saved(3);
  const std::string& prefix = saved.prefix;
  const std::string shard = ShardOf(prefix, 1);
  EditFile(shard, [](std::string* b) { (*b)[b->size() / 2] ^= 0x20; });
  RestoredState restored;
  CHECK_TRUE(Names(ReadCheckpointState(prefix, &restored), absl::StatusCode::kDataLoss, shard));
  CheckpointIndex index;
  CHECK_TRUE(Names(VerifyCheckpoint(prefix, &index), absl::StatusCode::kDataLoss, shard));
}

TFDC_TEST(ShortShardIsDataLossNamingIt) {
  Saved saved(3);
  const std::string& prefix = saved.prefix;
  const std::string shard = ShardOf(prefix, 2);
  EditFile(shard, [](std::string* b) { b->pop_back(); });
  RestoredState restored;
  const absl::Status s = ReadCheckpointState(prefix, &restored);
  CHECK_TRUE(Names(s, absl::StatusCode::kDataLoss, shard));
  CHECK_TRUE(absl::StrContains(s.message(), "the index says"));
}

TFDC_TEST(MissingShardIsNotFoundNamingIt) {
  Saved saved(2);
  const std::string& prefix = saved.prefix;
  const std::string shard = ShardOf(prefix, 0);
  CHECK_TRUE(Env::Default()->DeleteFile(shard).ok());
  RestoredState restored;
  CHECK_TRUE(Names(ReadCheckpointState(prefix, &restored), absl::StatusCode::kNotFound, shard));
}

TFDC_TEST(DamagedIndexIsDataLossNamingIt) {
  Saved saved(2);
  const std::string& prefix = saved.prefix;
  EditFile(IndexPath(prefix), [](std::string* b) { (*b)[20] ^= 1; });
  RestoredState restored;
  CHECK_TRUE(Names(ReadCheckpointState(prefix, &restored), absl::StatusCode::kDataLoss,
                   IndexPath(prefix)));
}

TFDC_TEST(NoCheckpointIsNotFound) {
  TempDir dir;
  RestoredState restored;
  const std::string prefix = dir.path() + "/none";
  CHECK_TRUE(Names(ReadCheckpointState(prefix, &restored), absl::StatusCode::kNotFound,
                   IndexPath(prefix)));
}

TFDC_TEST(ASecondSaveReplacesTheFirstAndItsShards) {
  Saved saved(2);
  const std::string& prefix = saved.prefix;
  const std::string old_shard = ShardOf(prefix, 0);
  Save(saved.state, prefix, 3);
  CHECK_TRUE(absl::IsNotFound(Env::Default()->FileExists(old_shard)));
  std::vector<std::string> children;
  CHECK_TRUE(Env::Default()->GetChildren(saved.dir.path(), &children).ok());
  CHECK_EQ_VAL(children.size(), size_t{4});  // The index and three shards.
  RestoredState restored;
  CHECK_TRUE(ReadCheckpointState(prefix, &restored).ok());
  CHECK_TRUE(SameState(saved.state, restored));
}

TFDC_TEST(AFailedSaveLeavesNothing) {
  TempDir dir;
  CapturedState state;
  FillState(&state);
  const std::string prefix = dir.path() + "/ckpt";
  WriteOptions options;
  options.num_shards = 70000;  // More than a checkpoint may have.
  CHECK_TRUE(absl::IsInvalidArgument(WriteCheckpoint(state, prefix, options)));
  CHECK_TRUE(absl::IsInvalidArgument(WriteCheckpoint(state, "", WriteOptions())));
  std::vector<std::string> children;
  CHECK_TRUE(Env::Default()->GetChildren(dir.path(), &children).ok());
  CHECK_EQ_VAL(children.size(), size_t{0});
}

TFDC_TEST(IndexCheckStopsTheReadBeforeTheShards) {
  Saved saved(2);
  const std::string& prefix = saved.prefix;
  CHECK_TRUE(Env::Default()->DeleteFile(ShardOf(prefix, 1)).ok());
  RestoredState restored;
  const absl::Status s = ReadCheckpointState(prefix, &restored, [](const CheckpointIndex&) {
    return absl::InvalidArgumentError("not this one");
  });
  CHECK_TRUE(absl::IsInvalidArgument(s));
}

}  // namespace
}  // namespace tfdata_checkpoint

TFDC_TEST_MAIN()
