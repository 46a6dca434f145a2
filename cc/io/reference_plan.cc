#include "cc/io/reference_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "cc/format/tensor_codec.h"
#include "cc/io/checkpoint_paths.h"
#include "tensorflow/core/platform/env.h"

namespace tfdata_checkpoint {
namespace {

absl::string_view Basename(absl::string_view prefix) {
  const size_t slash = prefix.rfind('/');
  return slash == absl::string_view::npos ? prefix : prefix.substr(slash + 1);
}

ReferencePlan Full(std::string reason) {
  ReferencePlan plan;
  plan.full_reason = std::move(reason);
  return plan;
}

}  // namespace

bool SamePrefix(const std::string& a, const std::string& b) {
  return Basename(a) == Basename(b) &&
         BackgroundSaveKey(PrefixDirectory(a)) == BackgroundSaveKey(PrefixDirectory(b));
}

ReferencePlan PlanReferences(const CapturedState& state, const IncrementalBase* base,
                             const std::string& prefix) {
  if (base == nullptr) return Full("no earlier checkpoint of this writer in this process");
  const std::string directory = BackgroundSaveKey(PrefixDirectory(prefix));
  if (BackgroundSaveKey(PrefixDirectory(base->prefix())) != directory) {
    return Full(absl::StrCat("the last checkpoint of this writer, ", base->prefix(),
                             ", is in another directory"));
  }
  // Replacing the checkpoint one would reference: once replaced, nothing
  // tells which of its files older references still need, so it is written
  // in full and the replace removes the old files as it always has.
  if (SamePrefix(base->prefix(), prefix)) {
    return Full("the save replaces the checkpoint it would reference");
  }

  ReferencePlan plan;
  std::vector<bool> used(base->size(), false);
  std::vector<bool> stream_used(base->streams().size(), false);
  size_t num_values = 0;
  for (const CapturedEntry& entry : state.entries()) num_values += entry.values.size();
  plan.referenced.assign(num_values, false);
  size_t v = 0;
  for (const CapturedEntry& entry : state.entries()) {
    for (const CapturedValue& value : entry.values) {
      const size_t this_value = v++;
      uint64_t bytes = 0;
      if (value.inline_scalar || !ReferenceableBytes(value.tensor, &bytes)) continue;
      const int64_t found = base->Find(value.tensor);
      // A buffer twice in one capture: only its first occurrence is a
      // reference (no two references may share bytes).
      if (found < 0 || used[found]) continue;
      const TensorLocation& location = base->held(found).location;
      // Same buffer, dtype and shape give the same encoding and length; a
      // mismatch would be a bug, and is written rather than trusted.
      if (location.encoding != EncodingFor(value.tensor.dtype()) || location.length != bytes) {
        continue;
      }
      used[found] = true;
      stream_used[location.stream] = true;
      plan.referenced[this_value] = true;
      plan.refs.push_back(location);
      plan.referenced_bytes += bytes;
    }
  }
  if (plan.refs.empty()) return Full("no tensor of the last checkpoint is still in the state");

  plan.stream_ids.assign(base->streams().size(), 0);
  for (uint32_t s = 0; s < stream_used.size(); ++s) {
    if (!stream_used[s]) continue;
    plan.used_streams.push_back(s);
    plan.stream_ids[s] = static_cast<uint32_t>(plan.used_streams.size());
  }
  if (plan.used_streams.size() > kMaxReferencedStreams) {
    return Full(absl::StrCat("it would reference ", plan.used_streams.size(),
                             " earlier checkpoints (at most ", kMaxReferencedStreams, ")"));
  }

  // The shard files the references need: each must be there with the size
  // its index gave it, before anything is written.
  std::vector<std::vector<uint64_t>> starts;
  for (const StreamRecord& stream : base->streams()) starts.push_back(ShardStarts(stream.shards));
  std::vector<ReferencedShard> covered;
  for (const TensorLocation& l : plan.refs) {
    AppendCoveredShards(l.stream, starts[l.stream], l.shard, l.offset, l.length, &covered);
  }
  std::sort(covered.begin(), covered.end());
  covered.erase(std::unique(covered.begin(), covered.end()), covered.end());
  tensorflow::Env* env = tensorflow::Env::Default();
  for (const ReferencedShard& r : covered) {
    const ShardRecord& shard = base->streams()[r.stream].shards[r.shard];
    const std::string path = ShardPath(prefix, shard.name);
    uint64_t size = 0;
    const absl::Status s = env->GetFileSize(path, &size);
    if (!s.ok()) {
      return Full(absl::StrCat("shard ", path, " of an earlier checkpoint is not readable: ",
                               s.message()));
    }
    if (size != shard.size) {
      return Full(absl::StrCat("shard ", path, " of an earlier checkpoint has ", size,
                               " bytes, not ", shard.size));
    }
    plan.referenced_files.push_back(shard.name);
    plan.referenced_file_bytes += shard.size;
  }
  std::sort(plan.referenced_files.begin(), plan.referenced_files.end());
  plan.incremental = true;
  return plan;
}

bool ExceedsSpaceBound(const ReferencePlan& plan, uint64_t own_bytes) {
  const uint64_t state_bytes = own_bytes + plan.referenced_bytes;
  return plan.referenced_file_bytes + own_bytes > kMaxSpaceAmplification * state_bytes;
}

}  // namespace tfdata_checkpoint
