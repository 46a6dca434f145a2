// The iterator state read back from a checkpoint, laid out for lookups by
// an IteratorStateReader: one metadata string per entry, and every value of
// every entry in one flat array, in key order.
#ifndef TFDATA_CHECKPOINT_CC_STATE_RESTORED_STATE_H_
#define TFDATA_CHECKPOINT_CC_STATE_RESTORED_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "tensorflow/core/framework/tensor.h"

namespace tfdata_checkpoint {

// Int64 scalars are read into `scalar` and only become a Tensor if asked
// for one: most are bookkeeping read with ReadScalar.
struct RestoredValue {
  tensorflow::Tensor tensor;  // Unset when `inline_scalar`.
  int64_t scalar = 0;
  bool inline_scalar = false;
};

struct RestoredState {
  std::vector<std::string> type_names;
  std::vector<uint32_t> type_name_ids;  // Per entry.
  std::vector<std::string> metadata;    // Per entry.
  // Entry e's values are values[first_value[e] .. first_value[e + 1]).
  std::vector<uint64_t> first_value;
  std::vector<RestoredValue> values;
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_STATE_RESTORED_STATE_H_
