#include "cc/state/state_reader.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tensorflow/core/data/serialization_utils.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::Tensor;

constexpr absl::string_view kDelimiter = "@@";
constexpr absl::string_view kIsDataset = ".is_dataset";
// Up to this many keys, a linear scan beats hashing the key.
constexpr uint32_t kMaxScannedKeys = 16;

}  // namespace

StateReader::StateReader(RestoredState* state, std::string source)
    : state_(state), source_(std::move(source)) {}

StateReader::~StateReader() = default;

absl::Status StateReader::Create(RestoredState* state, const std::string& source,
                                 std::unique_ptr<StateReader>* out) {
  std::unique_ptr<StateReader> reader(new StateReader(state, source));
  const size_t num_entries = state->metadata.size();
  if (state->first_value.size() != num_entries + 1 ||
      state->first_value.back() != state->values.size()) {
    return absl::InternalError("inconsistent restored state");
  }
  reader->keys_.resize(state->values.size());
  reader->entries_.resize(num_entries);
  reader->by_name_.Reserve(num_entries);
  for (size_t e = 0; e < num_entries; ++e) {
    const absl::string_view metadata = state->metadata[e];
    Entry& entry = reader->entries_[e];
    entry.first_value = state->first_value[e];
    const uint64_t num_values = state->first_value[e + 1] - entry.first_value;
    // "name@@key@@key...", empty pieces skipped, as TF's reader splits it.
    size_t end = metadata.find(kDelimiter);
    const absl::string_view name = metadata.substr(0, end);
    uint64_t k = 0;
    bool has_dataset = false;
    bool extra_keys = false;
    while (end != absl::string_view::npos) {
      const size_t start = end + kDelimiter.size();
      end = metadata.find(kDelimiter, start);
      const absl::string_view key = metadata.substr(
          start, end == absl::string_view::npos ? absl::string_view::npos : end - start);
      if (key.empty()) continue;
      if (k == num_values) {
        extra_keys = true;
        break;
      }
      reader->keys_[entry.first_value + k++] = key;
      has_dataset = has_dataset || absl::EndsWith(key, kIsDataset);
    }
    if (k != num_values || extra_keys) {
      return absl::DataLossError(absl::StrCat(
          "Checkpoint ", source, ": iterator state entry ", e, " ('", name,
          "') does not name one key per tensor"));
    }
    entry.num_values = static_cast<uint32_t>(num_values);
    if (entry.num_values > kMaxScannedKeys) {
      entry.by_key = std::make_unique<StringIndex<uint32_t>>();
      entry.by_key->Reserve(entry.num_values);
      for (uint32_t i = 0; i < entry.num_values; ++i) {
        entry.by_key->Set(reader->keys_[entry.first_value + i], i);
      }
    }
    if (has_dataset) {
      entry.data = std::make_unique<tensorflow::VariantTensorData>();
      entry.data->set_type_name(state->type_names[state->type_name_ids[e]]);
      entry.data->metadata_string() = std::string(metadata);
      for (uint32_t i = 0; i < entry.num_values; ++i) {
        const RestoredValue& value = state->values[entry.first_value + i];
        Tensor* t = entry.data->add_tensors();
        if (value.inline_scalar) {
          *t = Tensor(tensorflow::DT_INT64, tensorflow::TensorShape({}));
          t->scalar<int64_t>()() = value.scalar;
        } else {
          *t = value.tensor;
        }
      }
      entry.tf_reader = std::make_unique<tensorflow::data::VariantTensorDataReader>(
          std::vector<const tensorflow::VariantTensorData*>{entry.data.get()});
    }
    // A name saved twice: the last one wins, as in TF's reader.
    reader->by_name_.Set(name, static_cast<uint32_t>(e));
  }
  *out = std::move(reader);
  return absl::OkStatus();
}

absl::Status StateReader::Find(absl::string_view name, absl::string_view key,
                               const Entry** entry_out,
                               const RestoredValue** value_out) const {
  const uint32_t* e = by_name_.Find(name);
  if (e == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "Checkpoint ", source_, " has no iterator state named '", name,
        "': was it saved from a different input pipeline?"));
  }
  const Entry& entry = entries_[*e];
  *entry_out = &entry;
  int64_t found = -1;
  if (entry.by_key != nullptr) {
    if (const uint32_t* k = entry.by_key->Find(key); k != nullptr) found = *k;
  } else {
    // From the back: a key written twice reads as its last value, as in TF.
    for (int64_t i = static_cast<int64_t>(entry.num_values) - 1; i >= 0; --i) {
      if (keys_[entry.first_value + i] == key) {
        found = i;
        break;
      }
    }
  }
  if (found < 0) {
    return absl::NotFoundError(absl::StrCat(
        "Checkpoint ", source_, " has no key '", key, "' in iterator state '", name,
        "': was it saved from a different input pipeline?"));
  }
  *value_out = &state_->values[entry.first_value + found];
  return absl::OkStatus();
}

bool StateReader::Contains(absl::string_view key) const {
  std::string name;
  if (!tensorflow::data::ExtractIteratorPrefix(key, &name).ok()) return false;
  return Contains(name, key);
}

bool StateReader::Contains(absl::string_view name, absl::string_view key) const {
  const Entry* entry = nullptr;
  const RestoredValue* value = nullptr;
  return Find(name, key, &entry, &value).ok();
}

absl::Status StateReader::ReadScalar(absl::string_view key, int64_t* val) const {
  std::string name;
  if (absl::Status s = tensorflow::data::ExtractIteratorPrefix(key, &name); !s.ok()) {
    return s;
  }
  return ReadScalar(name, key, val);
}

absl::Status StateReader::ReadScalar(absl::string_view name, absl::string_view key,
                                     int64_t* val) const {
  const Entry* entry = nullptr;
  const RestoredValue* value = nullptr;
  if (absl::Status s = Find(name, key, &entry, &value); !s.ok()) return s;
  if (value->inline_scalar) {
    *val = value->scalar;
    return absl::OkStatus();
  }
  const Tensor& t = value->tensor;
  if (t.dtype() != tensorflow::DT_INT64 || t.NumElements() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Expected an int64 scalar for '", key, "' in iterator state '", name,
        "', found a ", tensorflow::DataTypeString(t.dtype()), " tensor of shape ",
        t.shape().DebugString()));
  }
  *val = t.flat<int64_t>()(0);
  return absl::OkStatus();
}

absl::Status StateReader::ReadScalar(absl::string_view key, tensorflow::tstring* val) const {
  std::string name;
  if (absl::Status s = tensorflow::data::ExtractIteratorPrefix(key, &name); !s.ok()) {
    return s;
  }
  return ReadScalar(name, key, val);
}

absl::Status StateReader::ReadScalar(absl::string_view name, absl::string_view key,
                                     tensorflow::tstring* val) const {
  const Entry* entry = nullptr;
  const RestoredValue* value = nullptr;
  if (absl::Status s = Find(name, key, &entry, &value); !s.ok()) return s;
  const Tensor& t = value->tensor;
  if (value->inline_scalar || t.dtype() != tensorflow::DT_STRING || t.NumElements() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Expected a string scalar for '", key, "' in iterator state '", name, "'"));
  }
  *val = t.flat<tensorflow::tstring>()(0);
  return absl::OkStatus();
}

absl::Status StateReader::ReadTensor(absl::string_view key, Tensor* val) const {
  return ReadTensor(/*flr=*/nullptr, key, val);
}

absl::Status StateReader::ReadTensor(tensorflow::FunctionLibraryRuntime* flr,
                                     absl::string_view key, Tensor* val) const {
  std::string name;
  if (absl::Status s = tensorflow::data::ExtractIteratorPrefix(key, &name); !s.ok()) {
    return s;
  }
  return ReadTensor(flr, name, key, val);
}

absl::Status StateReader::ReadTensor(absl::string_view name, absl::string_view key,
                                     Tensor* val) const {
  return ReadTensor(/*flr=*/nullptr, name, key, val);
}

absl::Status StateReader::ReadTensor(tensorflow::FunctionLibraryRuntime* flr,
                                     absl::string_view name, absl::string_view key,
                                     Tensor* val) const {
  const Entry* entry = nullptr;
  const RestoredValue* value = nullptr;
  if (absl::Status s = Find(name, key, &entry, &value); !s.ok()) return s;
  if (entry->tf_reader != nullptr) {
    return entry->tf_reader->ReadTensor(flr, name, key, val);
  }
  if (value->inline_scalar) {
    *val = Tensor(tensorflow::DT_INT64, tensorflow::TensorShape({}));
    val->scalar<int64_t>()() = value->scalar;
  } else {
    *val = value->tensor;
  }
  return absl::OkStatus();
}

}  // namespace tfdata_checkpoint
