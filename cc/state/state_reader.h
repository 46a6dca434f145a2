// An IteratorStateReader over a RestoredState, in place of TF's
// DeserializeIterator + VariantTensorDataReader: tensors are handed out as
// they were read from the shards, names and keys are views into the
// metadata, lookups are hashed (TF's reader copies every name and key into
// nested std::maps first).
#ifndef TFDATA_CHECKPOINT_CC_STATE_STATE_READER_H_
#define TFDATA_CHECKPOINT_CC_STATE_STATE_READER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cc/state/restored_state.h"
#include "cc/state/string_index.h"
#include "tensorflow/core/framework/dataset.h"
#include "tensorflow/core/data/serialization_utils.h"
#include "tensorflow/core/framework/variant_tensor_data.h"

namespace tfdata_checkpoint {

class StateReader : public tensorflow::data::IteratorStateReader {
 public:
  // Builds the lookup tables. `state` must outlive the reader and not change.
  // `source` names the checkpoint in errors. DataLoss when an entry's
  // metadata does not name one key per value.
  static absl::Status Create(RestoredState* state, const std::string& source,
                             std::unique_ptr<StateReader>* out);
  ~StateReader() override;

  bool Contains(absl::string_view key) const override;
  bool Contains(absl::string_view name, absl::string_view key) const override;
  absl::Status ReadScalar(absl::string_view key, int64_t* val) const override;
  absl::Status ReadScalar(absl::string_view name, absl::string_view key,
                          int64_t* val) const override;
  absl::Status ReadScalar(absl::string_view key, tensorflow::tstring* val) const override;
  absl::Status ReadScalar(absl::string_view name, absl::string_view key,
                          tensorflow::tstring* val) const override;
  absl::Status ReadTensor(absl::string_view key, tensorflow::Tensor* val) const override;
  absl::Status ReadTensor(tensorflow::FunctionLibraryRuntime* flr, absl::string_view key,
                          tensorflow::Tensor* val) const override;
  absl::Status ReadTensor(absl::string_view name, absl::string_view key,
                          tensorflow::Tensor* val) const override;
  absl::Status ReadTensor(tensorflow::FunctionLibraryRuntime* flr, absl::string_view name,
                          absl::string_view key, tensorflow::Tensor* val) const override;

 private:
  struct Entry {
    uint64_t first_value = 0;
    uint32_t num_values = 0;
    // Only entries with many keys get a hash table; the others are scanned.
    std::unique_ptr<StringIndex<uint32_t>> by_key;
    // Entries that hold a dataset (saved as a graph) are read through TF's
    // own reader, which knows how to rebuild it.
    std::unique_ptr<tensorflow::VariantTensorData> data;
    std::unique_ptr<tensorflow::data::VariantTensorDataReader> tf_reader;
  };

  StateReader(RestoredState* state, std::string source);
  // The value for (name, key), or NotFound.
  absl::Status Find(absl::string_view name, absl::string_view key,
                    const Entry** entry, const RestoredValue** value) const;

  RestoredState* state_;
  std::string source_;
  std::vector<absl::string_view> keys_;  // Parallel to state_->values.
  std::vector<Entry> entries_;
  StringIndex<uint32_t> by_name_;
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_STATE_STATE_READER_H_
