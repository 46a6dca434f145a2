#include "cc/state/captured_state.h"

#include "absl/strings/str_cat.h"
#include "tensorflow/core/data/serialization_utils.h"
#include "tensorflow/core/framework/variant.h"
#include "tensorflow/core/framework/variant_tensor_data.h"

namespace tfdata_checkpoint {

uint32_t CapturedState::TypeNameId(absl::string_view name) {
  for (size_t i = 0; i < type_names_.size(); ++i) {
    if (type_names_[i] == name) return static_cast<uint32_t>(i);
  }
  type_names_.emplace_back(name);
  return static_cast<uint32_t>(type_names_.size() - 1);
}

absl::Status CapturedState::FromVariantTensor(const tensorflow::Tensor& state,
                                              CapturedState* out) {
  if (state.dtype() != tensorflow::DT_VARIANT || state.dims() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state must be the 1-D variant tensor that SerializeIterator returns, got a ",
        tensorflow::DataTypeString(state.dtype()), " tensor of shape ",
        state.shape().DebugString()));
  }
  const auto variants = state.vec<tensorflow::Variant>();
  for (int64_t i = 0; i < variants.size(); ++i) {
    const auto* entry = variants(i).get<tensorflow::data::IteratorStateVariant>();
    if (entry == nullptr || entry->GetData() == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state element ", i, " is not an iterator state (it holds '",
          variants(i).TypeName(), "')"));
    }
    const tensorflow::VariantTensorData& data = *entry->GetData();
    CapturedEntry& captured = out->entries_.emplace_back();
    captured.metadata = data.metadata_string();
    captured.type_name_id = out->TypeNameId(data.type_name());
    captured.values.resize(data.tensors_size());
    for (int t = 0; t < data.tensors_size(); ++t) {
      captured.values[t].tensor = data.tensors(t);
    }
  }
  return absl::OkStatus();
}

}  // namespace tfdata_checkpoint
