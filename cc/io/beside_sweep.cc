#include "cc/io/beside_sweep.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cc/format/beside_names.h"
#include "cc/format/checkpoint_index.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/index_file.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/tensor_shape.h"
#include "tensorflow/core/platform/env.h"
#include "tensorflow/core/platform/file_system.h"
#include "tensorflow/core/platform/logging.h"
#include "tensorflow/core/util/tensor_bundle/tensor_bundle.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::Env;

// `directory/name`, as layout.join_path: a bare name in "".
std::string JoinName(const std::string& directory, const std::string& name) {
  if (directory.empty()) return name;
  if (directory.back() == '/') return directory + name;
  return absl::StrCat(directory, "/", name);
}

// What our indexes refer to, by index path; valid while size and mtime are.
class ReferencedFilesCache {
 public:
  static ReferencedFilesCache* Global() {
    // Leaked on purpose, like IncrementalBases: no destruction at exit.
    static ReferencedFilesCache* cache = new ReferencedFilesCache();
    return cache;
  }

  absl::Status Of(const std::string& prefix, std::vector<std::string>* files) {
    const std::string path = IndexPath(prefix);
    tensorflow::FileStatistics stat;
    absl::Status s = Env::Default()->Stat(path, &stat);
    if (absl::IsNotFound(s)) {
      files->clear();
      return absl::OkStatus();
    }
    if (!s.ok()) return Annotate(s, "reading", path);
    const Signature signature{stat.length, stat.mtime_nsec};
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = known_.find(path);
      if (it != known_.end() && it->second.first == signature) {
        *files = it->second.second;
        return absl::OkStatus();
      }
    }
    // Read outside the lock: an index can be tens of MB.
    CheckpointIndex index;
    if (s = ReadIndexFile(prefix, &index); !s.ok()) return s;
    std::vector<std::string> names;
    for (const ReferencedShard& r : ReferencedShards(index)) {
      names.push_back(index.streams[r.stream - 1].shards[r.shard].name);
    }
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    std::lock_guard<std::mutex> lock(mu_);
    known_[path] = {signature, names};
    *files = std::move(names);
    return absl::OkStatus();
  }

  void Forget(const std::string& index_path) {
    std::lock_guard<std::mutex> lock(mu_);
    known_.erase(index_path);
  }

 private:
  using Signature = std::pair<int64_t, int64_t>;  // Size, mtime in ns.
  std::mutex mu_;
  std::map<std::string, std::pair<Signature, std::vector<std::string>>> known_;
};

// The last sweep of each directory and base that asked to be run again.
class RememberedSweeps {
 public:
  static RememberedSweeps* Global() {
    static RememberedSweeps* sweeps = new RememberedSweeps();  // Leaked, as the cache.
    return sweeps;
  }

  void Remember(const std::string& tf_prefix, const std::set<std::string>& protected_tokens) {
    const size_t slash = tf_prefix.rfind('/');
    const std::string key = absl::StrCat(
        PrefixDirectory(tf_prefix), "\n",
        TfCheckpointBase(slash == std::string::npos ? tf_prefix : tf_prefix.substr(slash + 1)));
    std::lock_guard<std::mutex> lock(mu_);
    sweeps_[key] = {tf_prefix, protected_tokens};
  }

  std::vector<std::pair<std::string, std::set<std::string>>> All() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<std::string, std::set<std::string>>> all;
    for (const auto& [key, sweep] : sweeps_) all.push_back(sweep);
    return all;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::pair<std::string, std::set<std::string>>> sweeps_;
};

}  // namespace

absl::Status NamedBesideTokens(const std::string& tf_prefix, std::set<std::string>* tokens) {
  tokens->clear();
  Env* env = Env::Default();
  if (absl::IsNotFound(env->FileExists(IndexPath(tf_prefix)))) return absl::OkStatus();
  tensorflow::BundleReader reader(env, tf_prefix);
  if (!reader.status().ok()) return Annotate(reader.status(), "reading TF checkpoint", tf_prefix);
  // Keys first: a lookup moves the reader's position.
  std::vector<std::string> keys;
  for (reader.Seek(""); reader.Valid(); reader.Next()) {
    if (absl::EndsWith(reader.key(), kReferenceKeySuffix)) keys.emplace_back(reader.key());
  }
  for (const std::string& key : keys) {
    tensorflow::DataType dtype;
    tensorflow::TensorShape shape;
    absl::Status s = reader.LookupDtypeAndShape(key, &dtype, &shape);
    if (s.ok() && (dtype != tensorflow::DT_STRING || shape.dims() > 1)) {
      s = absl::DataLossError(absl::StrCat("reference ", key, " is not a string scalar or vector"));
    }
    tensorflow::Tensor names(dtype, shape);
    if (s.ok()) s = reader.Lookup(key, &names);
    if (!s.ok()) return Annotate(s, "reading TF checkpoint", tf_prefix);
    for (int64_t i = 0; i < names.NumElements(); ++i) {
      std::optional<std::string> token = BesideToken(names.flat<tensorflow::tstring>()(i));
      if (token.has_value()) tokens->insert(*std::move(token));
    }
  }
  return absl::OkStatus();
}

absl::Status ReferencedFilesOf(const std::string& prefix, std::vector<std::string>* files) {
  return ReferencedFilesCache::Global()->Of(prefix, files);
}

void SweepBesideCheckpoints(const std::string& tf_prefix,
                            const std::set<std::string>& protected_tokens,
                            std::vector<std::string>* removed) {
  removed->clear();
  Env* env = Env::Default();
  const std::string directory = PrefixDirectory(tf_prefix);
  const size_t slash = tf_prefix.rfind('/');
  BesideSweepInputs inputs;
  inputs.base = TfCheckpointBase(
      slash == std::string::npos ? tf_prefix : tf_prefix.substr(slash + 1));
  inputs.protected_tokens = protected_tokens;
  const absl::Status listed = env->GetChildren(directory.empty() ? "." : directory, &inputs.names);
  if (absl::IsNotFound(listed)) return;
  if (!listed.ok()) {
    LOG(WARNING) << "tfdata_checkpoint: cannot list " << directory
                 << " to remove old input state files: " << listed;
    return;
  }
  inputs.named_tokens = [&](const std::string& tf_name) -> std::optional<std::set<std::string>> {
    std::set<std::string> tokens;
    const absl::Status s = NamedBesideTokens(JoinName(directory, tf_name), &tokens);
    if (s.ok()) return tokens;
    LOG(WARNING) << "tfdata_checkpoint: cannot read the TF checkpoint "
                 << JoinName(directory, tf_name) << "; leaving its files alone: " << s;
    return std::nullopt;
  };
  inputs.referenced_files =
      [&](const std::string& our_name) -> std::optional<std::vector<std::string>> {
    std::vector<std::string> files;
    const absl::Status s = ReferencedFilesOf(JoinName(directory, our_name), &files);
    if (s.ok()) return files;
    LOG(WARNING) << "tfdata_checkpoint: cannot read " << JoinName(directory, our_name)
                 << "; no data file of old input checkpoints is removed: " << s;
    return std::nullopt;
  };
  // Saves whose index could not be deleted keep their other files: without
  // the index's deletion they would look whole and be broken.
  std::set<std::pair<std::string, std::string>> failed;
  for (const std::string& name : PlanBesideSweep(inputs)) {
    const BesideFile file = *ParseBesideFile(name);
    if (failed.count({file.tf_name, file.token}) > 0) continue;
    const std::string path = JoinName(directory, name);
    const absl::Status s = env->DeleteFile(path);
    if (!s.ok() && !absl::IsNotFound(s)) {
      LOG(WARNING) << "tfdata_checkpoint: cannot remove " << path << ": " << s;
      if (file.is_index) failed.insert({file.tf_name, file.token});
      continue;
    }
    if (file.is_index) ReferencedFilesCache::Global()->Forget(path);
    removed->push_back(path);
  }
  if (!removed->empty()) {
    LOG(INFO) << "tfdata_checkpoint: removed input state files of deleted or unfinished TF "
                 "checkpoints: "
              << absl::StrJoin(*removed, ", ");
  }
}

void RememberSweep(const std::string& tf_prefix, const std::set<std::string>& protected_tokens) {
  RememberedSweeps::Global()->Remember(tf_prefix, protected_tokens);
}

void SweepRememberedAgain(std::vector<std::string>* removed) {
  removed->clear();
  for (const auto& [tf_prefix, protected_tokens] : RememberedSweeps::Global()->All()) {
    std::vector<std::string> more;
    SweepBesideCheckpoints(tf_prefix, protected_tokens, &more);
    removed->insert(removed->end(), more.begin(), more.end());
  }
}

}  // namespace tfdata_checkpoint
