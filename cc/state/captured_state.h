// The state of an iterator held for writing, without a copy of any buffered
// element: per entry (one per name the iterator's Save writes under), TF's
// metadata string ("name@@key@@key...") and the values in key order, as
// tensors held by reference or as int64 scalars held inline.
#ifndef TFDATA_CHECKPOINT_CC_STATE_CAPTURED_STATE_H_
#define TFDATA_CHECKPOINT_CC_STATE_CAPTURED_STATE_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cc/format/checkpoint_index.h"
#include "tensorflow/core/framework/tensor.h"

namespace tfdata_checkpoint {

// One value of an entry. Int64 scalars (most of the bookkeeping a Save
// writes) are kept inline: a Tensor for each would cost two allocations.
struct CapturedValue {
  tensorflow::Tensor tensor;  // Unset when `inline_scalar`.
  int64_t scalar = 0;
  bool inline_scalar = false;
};

struct CapturedEntry {
  std::string metadata;  // Exactly VariantTensorData's metadata.
  uint32_t type_name_id = 0;
  absl::InlinedVector<CapturedValue, 3> values;
};

class CapturedState {
 public:
  CapturedState() = default;
  CapturedState(const CapturedState&) = delete;
  CapturedState& operator=(const CapturedState&) = delete;

  // From the 1-D variant tensor SerializeIterator returns (the older ops):
  // takes every entry's metadata and tensor references. Fails with
  // InvalidArgument unless each element is an iterator state.
  static absl::Status FromVariantTensor(const tensorflow::Tensor& state,
                                        CapturedState* out);

  // Index into type_names(), adding `name` when new.
  uint32_t TypeNameId(absl::string_view name);

  const std::vector<std::string>& type_names() const { return type_names_; }
  // A deque: entries never move, so callers may keep pointers to them.
  std::deque<CapturedEntry>& entries() { return entries_; }
  const std::deque<CapturedEntry>& entries() const { return entries_; }

  // The dtypes and shapes of the elements the saved iterator hands out, when
  // known (SaveIterator knows them; a serialized state does not carry them).
  std::optional<std::vector<ComponentSpec>>& element_spec() { return element_spec_; }
  const std::optional<std::vector<ComponentSpec>>& element_spec() const {
    return element_spec_;
  }

 private:
  std::vector<std::string> type_names_;
  std::deque<CapturedEntry> entries_;
  std::optional<std::vector<ComponentSpec>> element_spec_;
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_STATE_CAPTURED_STATE_H_
