#include "cc/io/index_file.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "cc/io/checkpoint_paths.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/platform/file_system.h"

namespace tfdata_checkpoint {

using tensorflow::Env;

namespace {

absl::Status ReadIndex(const std::string& prefix, bool entries, CheckpointIndex* index) {
  Env* env = Env::Default();
  const std::string path = IndexPath(prefix);
  absl::Status exists = env->FileExists(path);
  if (absl::IsNotFound(exists)) {
    return absl::NotFoundError(absl::StrCat(
        "No tfdata-checkpoint at prefix ", prefix, ": ", path, " does not exist"));
  }
  std::string data;
  if (absl::Status s = tensorflow::ReadFileToString(env, path, &data); !s.ok()) {
    return Annotate(s, "reading", path);
  }
  return entries ? DecodeIndex(data, path, index) : DecodeIndexShards(data, path, index);
}

}  // namespace

absl::Status ReadIndexFile(const std::string& prefix, CheckpointIndex* index) {
  return ReadIndex(prefix, /*entries=*/true, index);
}

absl::Status ReadIndexShards(const std::string& prefix, CheckpointIndex* index) {
  return ReadIndex(prefix, /*entries=*/false, index);
}

absl::Status CommitIndex(const CheckpointIndex& index, const std::string& prefix,
                         bool fsync, bool* renamed) {
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
      env->DeleteFile(ShardPath(prefix, shard.name)).IgnoreError();
    }
  }
  if (fsync) {
    return Annotate(SyncDirectory(PrefixDirectory(prefix)), "committing", final_path);
  }
  return absl::OkStatus();
}

}  // namespace tfdata_checkpoint
