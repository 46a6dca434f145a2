#include "cc/state/state_writer.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cc/state/entry_metadata.h"
#include "tensorflow/core/data/serialization_utils.h"
#include "tensorflow/core/framework/variant_tensor_data.h"

namespace tfdata_checkpoint {
namespace {

constexpr char kIteratorTypeName[] = "tensorflow::Iterator";
constexpr size_t kNameBlockBytes = 256 << 10;

}  // namespace

StateWriter::StateWriter(CapturedState* out)
    : out_(out), type_name_id_(out->TypeNameId(kIteratorTypeName)) {}

StateWriter::~StateWriter() = default;

absl::StatusOr<CapturedEntry*> StateWriter::AddKey(absl::string_view name,
                                                   absl::string_view key) {
  // The metadata could not be split back into keys.
  if (key.find(kMetadataDelimiter) != absl::string_view::npos ||
      name.find(kMetadataDelimiter) != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("iterator state key '", name, "' / '", key,
                                                   "' contains '", kMetadataDelimiter, "'"));
  }
  CapturedEntry* entry = nullptr;
  // Saves write all keys of a name in a row: compare with the last one first.
  if (last_entry_ != nullptr && name == last_name_) {
    entry = last_entry_;
  } else {
    absl::string_view stored_name;
    if (CapturedEntry* const* found = by_name_.Find(name, &stored_name); found != nullptr) {
      entry = *found;
      last_name_ = stored_name;
    } else {
      if (name_blocks_.empty() || block_size_ - block_used_ < name.size()) {
        block_size_ = std::max(kNameBlockBytes, name.size());
        name_blocks_.push_back(std::make_unique<char[]>(block_size_));
        block_used_ = 0;
      }
      char* stored = name_blocks_.back().get() + block_used_;
      if (!name.empty()) std::memcpy(stored, name.data(), name.size());
      block_used_ += name.size();
      last_name_ = absl::string_view(stored, name.size());
      entry = &out_->entries().emplace_back();
      entry->type_name_id = type_name_id_;
      entry->metadata.reserve(name.size() + 4 * (key.size() + 2));
      entry->metadata.append(name.data(), name.size());
      by_name_.Set(last_name_, entry);
    }
    last_entry_ = entry;
  }
  entry->metadata.append(kMetadataDelimiter.data(), kMetadataDelimiter.size());
  entry->metadata.append(key.data(), key.size());
  return entry;
}

absl::Status StateWriter::WriteScalar(absl::string_view name, absl::string_view key,
                                      int64_t val) {
  absl::StatusOr<CapturedEntry*> entry = AddKey(name, key);
  if (!entry.ok()) return entry.status();
  CapturedValue& value = (*entry)->values.emplace_back();
  value.scalar = val;
  value.inline_scalar = true;
  return absl::OkStatus();
}

absl::Status StateWriter::WriteScalar(absl::string_view name, absl::string_view key,
                                      const tensorflow::tstring& val) {
  tensorflow::Tensor t(tensorflow::DT_STRING, tensorflow::TensorShape({}));
  t.scalar<tensorflow::tstring>()() = val;
  return WriteTensor(name, key, t);
}

absl::Status StateWriter::WriteTensor(absl::string_view name, absl::string_view key,
                                      const tensorflow::Tensor& val) {
  if (val.dtype() == tensorflow::DT_VARIANT && val.NumElements() == 1) {
    tensorflow::data::DatasetBase* dataset = nullptr;
    if (tensorflow::data::GetDatasetFromVariantTensor(val, &dataset).ok()) {
      return WriteDataset(name, key, val);
    }
  }
  absl::StatusOr<CapturedEntry*> entry = AddKey(name, key);
  if (!entry.ok()) return entry.status();
  (*entry)->values.emplace_back().tensor = val;
  return absl::OkStatus();
}

// A dataset inside the state (e.g. the input of an interleave) is saved as a
// graph, with keys that only TF's own writer knows how to produce: let it do
// that much and take over what it wrote.
absl::Status StateWriter::WriteDataset(absl::string_view name, absl::string_view key,
                                       const tensorflow::Tensor& val) {
  tensorflow::data::VariantTensorDataWriter writer;
  if (absl::Status s = writer.WriteTensor(name, key, val); !s.ok()) return s;
  std::vector<const tensorflow::VariantTensorData*> written;
  writer.GetData(&written);
  for (const tensorflow::VariantTensorData* data : written) {
    std::vector<absl::string_view> keys;
    ForEachKey(data->metadata_string(), [&](absl::string_view written_key) {
      keys.push_back(written_key);
      return true;
    });
    if (keys.size() != static_cast<size_t>(data->tensors_size())) {
      return absl::InternalError("unexpected metadata from VariantTensorDataWriter");
    }
    for (int t = 0; t < data->tensors_size(); ++t) {
      absl::StatusOr<CapturedEntry*> entry = AddKey(name, keys[t]);
      if (!entry.ok()) return entry.status();
      (*entry)->values.emplace_back().tensor = data->tensors(t);
    }
  }
  return absl::OkStatus();
}

absl::Status StateWriter::WriteScalar(absl::string_view key, int64_t val) {
  std::string name;
  if (absl::Status s = tensorflow::data::ExtractIteratorPrefix(key, &name); !s.ok()) {
    return s;
  }
  return WriteScalar(name, key, val);
}

absl::Status StateWriter::WriteScalar(absl::string_view key,
                                      const tensorflow::tstring& val) {
  std::string name;
  if (absl::Status s = tensorflow::data::ExtractIteratorPrefix(key, &name); !s.ok()) {
    return s;
  }
  return WriteScalar(name, key, val);
}

absl::Status StateWriter::WriteTensor(absl::string_view key, const tensorflow::Tensor& val) {
  std::string name;
  if (absl::Status s = tensorflow::data::ExtractIteratorPrefix(key, &name); !s.ok()) {
    return s;
  }
  return WriteTensor(name, key, val);
}

}  // namespace tfdata_checkpoint
