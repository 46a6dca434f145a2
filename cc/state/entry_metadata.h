// The metadata of an iterator state entry as TF's VariantTensorDataWriter
// writes it: "name@@key@@key...", one key per tensor, in order.
#ifndef TFDATA_CHECKPOINT_CC_STATE_ENTRY_METADATA_H_
#define TFDATA_CHECKPOINT_CC_STATE_ENTRY_METADATA_H_

#include "absl/strings/string_view.h"

namespace tfdata_checkpoint {

inline constexpr absl::string_view kMetadataDelimiter = "@@";

// The name: the metadata up to its first delimiter.
inline absl::string_view EntryName(absl::string_view metadata) {
  return metadata.substr(0, metadata.find(kMetadataDelimiter));
}

// Calls fn(key) for the keys of `metadata`, empty pieces skipped as TF's
// reader skips them, until fn returns false.
template <typename Fn>
void ForEachKey(absl::string_view metadata, Fn fn) {
  size_t end = metadata.find(kMetadataDelimiter);
  while (end != absl::string_view::npos) {
    const size_t start = end + kMetadataDelimiter.size();
    end = metadata.find(kMetadataDelimiter, start);
    const absl::string_view key = metadata.substr(
        start, end == absl::string_view::npos ? absl::string_view::npos : end - start);
    if (!key.empty() && !fn(key)) return;
  }
}

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_STATE_ENTRY_METADATA_H_
