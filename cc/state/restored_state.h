// The iterator state read back from a checkpoint, laid out for lookups by
// an IteratorStateReader with as little per-entry memory as possible (a
// restore must fit next to the buffer it rebuilds): all metadata in one
// string, tensors and int64 scalars in two flat arrays, and per value only a
// 4-byte reference to one of them.
#ifndef TFDATA_CHECKPOINT_CC_STATE_RESTORED_STATE_H_
#define TFDATA_CHECKPOINT_CC_STATE_RESTORED_STATE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tensorflow/core/framework/tensor.h"
#include "tensorflow/core/framework/variant_tensor_data.h"

namespace tfdata_checkpoint {

struct RestoredState {
  // Values whose reference has this bit are int64 scalars: most are
  // bookkeeping read with ReadScalar, and need no Tensor.
  static constexpr uint32_t kScalarBit = 0x80000000u;
  static constexpr uint64_t kMaxValues = kScalarBit - 1;

  std::vector<std::string> type_names;
  std::vector<uint32_t> type_name_ids;  // Per entry.
  // Entry e's metadata is metadata_bytes[metadata_end[e - 1] .. metadata_end[e]).
  std::string metadata_bytes;
  std::vector<uint64_t> metadata_end;
  // Entry e's values are first_value[e] .. first_value[e + 1].
  std::vector<uint64_t> first_value;
  std::vector<uint32_t> value_ref;
  std::vector<tensorflow::Tensor> tensors;
  std::vector<int64_t> scalars;

  size_t num_entries() const { return metadata_end.size(); }
  absl::string_view metadata(size_t e) const {
    const uint64_t start = e == 0 ? 0 : metadata_end[e - 1];
    return absl::string_view(metadata_bytes).substr(start, metadata_end[e] - start);
  }
  bool is_scalar(uint64_t v) const { return (value_ref[v] & kScalarBit) != 0; }
  int64_t scalar(uint64_t v) const { return scalars[value_ref[v] & ~kScalarBit]; }
  const tensorflow::Tensor& tensor(uint64_t v) const { return tensors[value_ref[v]]; }
  tensorflow::Tensor* mutable_tensor(uint64_t v) { return &tensors[value_ref[v]]; }
  // Value v as a Tensor, an int64 scalar as a DT_INT64 tensor of shape [].
  tensorflow::Tensor value_tensor(uint64_t v) const {
    if (!is_scalar(v)) return tensor(v);
    tensorflow::Tensor t(tensorflow::DT_INT64, tensorflow::TensorShape({}));
    t.scalar<int64_t>()() = scalar(v);
    return t;
  }

  // Entry e as TF's own reader and DeserializeIterator take it (tensors are
  // shared, not copied).
  void EntryData(size_t e, tensorflow::VariantTensorData* out) const {
    out->set_type_name(type_names[type_name_ids[e]]);
    out->metadata_string() = std::string(metadata(e));
    for (uint64_t v = first_value[e]; v < first_value[e + 1]; ++v) {
      *out->add_tensors() = value_tensor(v);
    }
  }

  // Appends an entry / a value of the last entry (for tests and builders).
  void AddEntry(uint32_t type_name_id, absl::string_view metadata) {
    type_name_ids.push_back(type_name_id);
    metadata_bytes.append(metadata.data(), metadata.size());
    metadata_end.push_back(metadata_bytes.size());
    first_value.push_back(value_ref.size());
  }
  void AddScalar(int64_t value) {
    value_ref.push_back(static_cast<uint32_t>(scalars.size()) | kScalarBit);
    scalars.push_back(value);
  }
  void AddTensor(tensorflow::Tensor tensor) {
    value_ref.push_back(static_cast<uint32_t>(tensors.size()));
    tensors.push_back(std::move(tensor));
  }
  // Closes the entry list: first_value gets its final element.
  void Finish() { first_value.push_back(value_ref.size()); }
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_STATE_RESTORED_STATE_H_
