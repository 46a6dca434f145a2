// Deciding, before anything is written, which tensors of a captured state an
// incremental save references in its base instead of writing them, or that
// it writes the state in full (the chain bound in incremental_bases.h).
#ifndef TFDATA_CHECKPOINT_CC_IO_REFERENCE_PLAN_H_
#define TFDATA_CHECKPOINT_CC_IO_REFERENCE_PLAN_H_

#include <cstdint>
#include <string>
#include <vector>

#include "cc/io/incremental_bases.h"
#include "cc/state/captured_state.h"

namespace tfdata_checkpoint {

struct ReferencePlan {
  // False: write the state in full (format 1.1); `full_reason` says why.
  bool incremental = false;
  std::string full_reason;
  // Per value of the state, in entry order: referenced (not written).
  std::vector<bool> referenced;
  // Per referenced value, in order: its location in the base (`stream`
  // indexes the base's streams).
  std::vector<TensorLocation> refs;
  // Per base stream: its stream id in the new index (0: not referenced).
  std::vector<uint32_t> stream_ids;
  // The base streams the new index lists, in the order of their ids.
  std::vector<uint32_t> used_streams;
  uint64_t referenced_bytes = 0;
  // Sorted basenames of the shard files the references need, and the sum
  // of their sizes.
  std::vector<std::string> referenced_files;
  uint64_t referenced_file_bytes = 0;
};

// Plans a save of `state` as `prefix` from `base` (null: none). Checks every
// full-save trigger that does not need the own stream's size: no base, the
// base in another directory or at `prefix` itself, more than
// kMaxReferencedStreams streams, a referenced shard file missing or of
// another size than recorded, nothing to reference. The space bound needs
// the own bytes: see ExceedsSpaceBound.
ReferencePlan PlanReferences(const CapturedState& state, const IncrementalBase* base,
                             const std::string& prefix);

// Whether two prefixes name the same checkpoint (however their directories
// are spelled).
bool SamePrefix(const std::string& a, const std::string& b);

// The space amplification bound: true when the files `plan` references plus
// `own_bytes` exceed kMaxSpaceAmplification times the state's bytes (own
// plus referenced).
bool ExceedsSpaceBound(const ReferencePlan& plan, uint64_t own_bytes);

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_REFERENCE_PLAN_H_
