// An IteratorStateReader over a RestoredState, in place of TF's
// DeserializeIterator + VariantTensorDataReader: tensors are handed out as
// they were read from the shards, names and keys are views into the
// metadata, lookups are hashed (TF's reader copies every name and key into
// nested std::maps first).
#ifndef TFDATA_CHECKPOINT_CC_STATE_STATE_READER_H_
#define TFDATA_CHECKPOINT_CC_STATE_STATE_READER_H_

#include <memory>
#include <unordered_map>
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
  // What only some entries need: a hash of their keys when they have many,
  // TF's own reader when they hold a dataset (saved as a graph, which only
  // TF knows how to rebuild).
  struct Extra {
    std::unique_ptr<StringIndex<uint32_t>> by_key;
    std::unique_ptr<tensorflow::VariantTensorData> data;
    std::unique_ptr<tensorflow::data::VariantTensorDataReader> tf_reader;
  };

  StateReader(RestoredState* state, std::string source);
  absl::string_view Name(uint32_t e) const {
    return state_->metadata(e).substr(0, name_size_[e]);
  }
  // The entry named `name`, or -1.
  int64_t FindEntry(absl::string_view name) const;
  void AddEntry(uint32_t e);
  // The value for (name, key), or NotFound.
  absl::Status Find(absl::string_view name, absl::string_view key, const Extra** extra,
                    uint64_t* value) const;

  RestoredState* state_;
  std::string source_;
  // Per entry; the name is the metadata up to its first "@@".
  std::vector<uint32_t> name_size_;
  // Open addressing over entry numbers + 1 (0: empty), hashed by name: 4
  // bytes a slot where a table of string views would take 24.
  std::vector<uint32_t> slots_;
  std::unordered_map<uint32_t, Extra> extras_;
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_STATE_STATE_READER_H_
