#include "cc/state/state_reader.h"

#include <functional>
#include <string_view>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cc/state/entry_metadata.h"
#include "tensorflow/core/data/serialization_utils.h"

namespace tfdata_checkpoint {
namespace {

using tensorflow::Tensor;

constexpr absl::string_view kIsDataset = ".is_dataset";
// Up to this many keys, scanning the metadata beats hashing the key.
constexpr uint32_t kMaxScannedKeys = 16;

size_t HashName(absl::string_view name) {
  return std::hash<std::string_view>()(std::string_view(name.data(), name.size()));
}

}  // namespace

StateReader::StateReader(RestoredState* state, std::string source)
    : state_(state), source_(std::move(source)) {}

StateReader::~StateReader() = default;

int64_t StateReader::FindEntry(absl::string_view name) const {
  if (slots_.empty()) return -1;
  const size_t mask = slots_.size() - 1;
  for (size_t i = HashName(name) & mask;; i = (i + 1) & mask) {
    const uint32_t slot = slots_[i];
    if (slot == 0) return -1;
    if (Name(slot - 1) == name) return slot - 1;
  }
}

void StateReader::AddEntry(uint32_t e) {
  const size_t mask = slots_.size() - 1;
  for (size_t i = HashName(Name(e)) & mask;; i = (i + 1) & mask) {
    uint32_t& slot = slots_[i];
    // A name saved twice: the last one wins, as in TF's reader.
    if (slot == 0 || Name(slot - 1) == Name(e)) {
      slot = e + 1;
      return;
    }
  }
}

absl::Status StateReader::Create(RestoredState* state, const std::string& source,
                                 std::unique_ptr<StateReader>* out) {
  std::unique_ptr<StateReader> reader(new StateReader(state, source));
  const size_t num_entries = state->num_entries();
  if (state->first_value.size() != num_entries + 1 ||
      state->first_value.back() != state->value_ref.size() ||
      num_entries >= RestoredState::kMaxValues) {
    return absl::InternalError("inconsistent restored state");
  }
  reader->name_size_.resize(num_entries);
  size_t capacity = 16;
  while (capacity < 2 * num_entries) capacity *= 2;
  reader->slots_.assign(capacity, 0);
  for (size_t e = 0; e < num_entries; ++e) {
    const absl::string_view metadata = state->metadata(e);
    const absl::string_view name = EntryName(metadata);
    reader->name_size_[e] = static_cast<uint32_t>(name.size());
    const uint64_t first = state->first_value[e];
    const uint64_t num_values = state->first_value[e + 1] - first;
    uint64_t k = 0;
    bool has_dataset = false;
    ForEachKey(metadata, [&](absl::string_view key) {
      ++k;
      has_dataset = has_dataset || absl::EndsWith(key, kIsDataset);
      return true;
    });
    if (k != num_values) {
      return absl::DataLossError(absl::StrCat(
          "Checkpoint ", source, ": iterator state entry ", e, " ('", name, "') names ", k,
          " keys for ", num_values, " tensors"));
    }
    if (num_values > kMaxScannedKeys || has_dataset) {
      Extra& extra = reader->extras_[static_cast<uint32_t>(e)];
      if (num_values > kMaxScannedKeys) {
        extra.by_key = std::make_unique<StringIndex<uint32_t>>();
        extra.by_key->Reserve(num_values);
        uint32_t i = 0;
        ForEachKey(metadata, [&](absl::string_view key) {
          extra.by_key->Set(key, i++);
          return true;
        });
      }
      if (has_dataset) {
        extra.data = std::make_unique<tensorflow::VariantTensorData>();
        state->EntryData(e, extra.data.get());
        extra.tf_reader = std::make_unique<tensorflow::data::VariantTensorDataReader>(
            std::vector<const tensorflow::VariantTensorData*>{extra.data.get()});
      }
    }
    reader->AddEntry(static_cast<uint32_t>(e));
  }
  *out = std::move(reader);
  return absl::OkStatus();
}

absl::Status StateReader::Find(absl::string_view name, absl::string_view key,
                               const Extra** extra_out, uint64_t* value_out) const {
  const int64_t e = FindEntry(name);
  if (e < 0) {
    return absl::NotFoundError(absl::StrCat(
        "Checkpoint ", source_, " has no iterator state named '", name,
        "': was it saved from a different input pipeline?"));
  }
  const Extra* extra = nullptr;
  if (!extras_.empty()) {
    auto it = extras_.find(static_cast<uint32_t>(e));
    if (it != extras_.end()) extra = &it->second;
  }
  *extra_out = extra;
  int64_t found = -1;
  if (extra != nullptr && extra->by_key != nullptr) {
    if (const uint32_t* k = extra->by_key->Find(key); k != nullptr) found = *k;
  } else {
    // The last match: a key written twice reads as its last value, as in TF.
    int64_t i = 0;
    ForEachKey(state_->metadata(e), [&](absl::string_view k) {
      if (k == key) found = i;
      ++i;
      return true;
    });
  }
  if (found < 0) {
    return absl::NotFoundError(absl::StrCat(
        "Checkpoint ", source_, " has no key '", key, "' in iterator state '", name,
        "': was it saved from a different input pipeline?"));
  }
  *value_out = state_->first_value[e] + found;
  return absl::OkStatus();
}

bool StateReader::Contains(absl::string_view key) const {
  std::string name;
  if (!tensorflow::data::ExtractIteratorPrefix(key, &name).ok()) return false;
  return Contains(name, key);
}

bool StateReader::Contains(absl::string_view name, absl::string_view key) const {
  const Extra* extra = nullptr;
  uint64_t value = 0;
  return Find(name, key, &extra, &value).ok();
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
  const Extra* extra = nullptr;
  uint64_t v = 0;
  if (absl::Status s = Find(name, key, &extra, &v); !s.ok()) return s;
  if (state_->is_scalar(v)) {
    *val = state_->scalar(v);
    return absl::OkStatus();
  }
  const Tensor& t = state_->tensor(v);
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
  const Extra* extra = nullptr;
  uint64_t v = 0;
  if (absl::Status s = Find(name, key, &extra, &v); !s.ok()) return s;
  if (state_->is_scalar(v) || state_->tensor(v).dtype() != tensorflow::DT_STRING ||
      state_->tensor(v).NumElements() != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "Expected a string scalar for '", key, "' in iterator state '", name, "'"));
  }
  *val = state_->tensor(v).flat<tensorflow::tstring>()(0);
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
  const Extra* extra = nullptr;
  uint64_t v = 0;
  if (absl::Status s = Find(name, key, &extra, &v); !s.ok()) return s;
  if (extra != nullptr && extra->tf_reader != nullptr) {
    return extra->tf_reader->ReadTensor(flr, name, key, val);
  }
  *val = state_->value_tensor(v);
  return absl::OkStatus();
}

}  // namespace tfdata_checkpoint
