#include "cc/io/index_file.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "cc/io/checkpoint_paths.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/platform/file_system.h"

namespace tfdata_checkpoint {

using tensorflow::Env;

namespace {

absl::Status ReadIndex(const std::string& prefix, bool entries, CheckpointIndex* index) {
  std::string data;
  if (absl::Status s = ReadIndexBytes(prefix, &data); !s.ok()) return s;
  const std::string path = IndexPath(prefix);
  return entries ? DecodeIndex(data, path, index) : DecodeIndexShards(data, path, index);
}

// Checks the entries and keeps nothing of them.
class SkipEntries : public IndexVisitor {
 public:
  absl::Status Begin(std::vector<std::string>, uint64_t) override { return absl::OkStatus(); }
  absl::Status Entry(uint64_t, uint32_t, absl::string_view, uint32_t) override {
    return absl::OkStatus();
  }
  absl::Status Tensor(uint64_t, const TensorRecord&) override { return absl::OkStatus(); }
};

}  // namespace

absl::Status ReadIndexBytes(const std::string& prefix, std::string* data) {
  Env* env = Env::Default();
  const std::string path = IndexPath(prefix);
  if (absl::IsNotFound(env->FileExists(path))) {
    return absl::NotFoundError(absl::StrCat(
        "No tfdata-checkpoint at prefix ", prefix, ": ", path, " does not exist"));
  }
  // A directory where the index should be is damage like any other: reading it
  // would fail with FailedPrecondition, which restores take for a misfit.
  if (env->IsDirectory(path).ok()) {
    return absl::DataLossError(absl::StrCat("Checkpoint index ", path,
                                            " is a directory, not an index file"));
  }
  return Annotate(tensorflow::ReadFileToString(env, path, data), "reading", path);
}

absl::Status ReadIndexElementSpec(const std::string& prefix, CheckpointIndex* index) {
  std::string data;
  if (absl::Status s = ReadIndexBytes(prefix, &data); !s.ok()) return s;
  SkipEntries skip;
  return DecodeIndexWith(data, IndexPath(prefix), index, &skip);
}

absl::Status ReadIndexFile(const std::string& prefix, CheckpointIndex* index) {
  return ReadIndex(prefix, /*entries=*/true, index);
}

absl::Status ReadIndexShards(const std::string& prefix, CheckpointIndex* index) {
  return ReadIndex(prefix, /*entries=*/false, index);
}

absl::Status CommitIndex(const CheckpointIndex& index, const std::string& prefix,
                         bool fsync, bool* renamed,
                         const std::vector<std::string>& keep_files) {
  *renamed = false;
  Env* env = Env::Default();
  const std::string tmp = TempIndexPath(prefix, index.nonce);
  const std::string final_path = IndexPath(prefix);
  {
    std::unique_ptr<tensorflow::WritableFile> file;
    absl::Status s = Annotate(env->NewWritableFile(tmp, &file), "creating", tmp);
    if (s.ok()) s = Annotate(file->Append(EncodeIndex(index)), "writing", tmp);
    if (s.ok() && fsync) s = Annotate(file->Sync(), "syncing", tmp);
    if (s.ok()) s = Annotate(file->Close(), "closing", tmp);
    if (s.ok() && fsync) s = SyncLocalFile(tmp);
    if (!s.ok()) {
      env->DeleteFile(tmp).IgnoreError();
      return s;
    }
  }
  // The shards of the checkpoint this one replaces become garbage only once
  // the rename has happened.
  CheckpointIndex replaced;
  const bool has_replaced = ReadIndexShards(prefix, &replaced).ok();

  absl::Status s = env->RenameFile(tmp, final_path);
  if (!s.ok()) {
    env->DeleteFile(tmp).IgnoreError();
    return Annotate(s, "committing", final_path);
  }
  *renamed = true;
  if (has_replaced && replaced.nonce != index.nonce) {
    for (const ShardRecord& shard : replaced.shards) {
      if (std::binary_search(keep_files.begin(), keep_files.end(), shard.name)) continue;
      env->DeleteFile(ShardPath(prefix, shard.name)).IgnoreError();
    }
  }
  if (fsync) {
    return Annotate(SyncDirectory(PrefixDirectory(prefix)), "committing", final_path);
  }
  return absl::OkStatus();
}

}  // namespace tfdata_checkpoint
