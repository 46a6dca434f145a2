// An IteratorStateWriter that captures an iterator's Save into a
// CapturedState, in place of TF's VariantTensorDataWriter + SerializeIterator:
// no copy of any buffered tensor, no VariantTensorData or variant per entry,
// no sorted map keyed by long names. What it records is what
// VariantTensorDataWriter would have produced (same names, same metadata, same
// tensors, dataset-valued tensors as TF serializes them), so either reader
// restores it.
#ifndef TFDATA_CHECKPOINT_CC_STATE_STATE_WRITER_H_
#define TFDATA_CHECKPOINT_CC_STATE_STATE_WRITER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "cc/state/captured_state.h"
#include "cc/state/string_index.h"
#include "tensorflow/core/framework/dataset.h"

namespace tfdata_checkpoint {

class StateWriter : public tensorflow::data::IteratorStateWriter {
 public:
  // `out` must outlive the writer; entries are appended in the order their
  // names are first written.
  explicit StateWriter(CapturedState* out);
  ~StateWriter() override;

  absl::Status WriteScalar(absl::string_view key, int64_t val) override;
  absl::Status WriteScalar(absl::string_view name, absl::string_view key,
                           int64_t val) override;
  absl::Status WriteScalar(absl::string_view key, const tensorflow::tstring& val) override;
  absl::Status WriteScalar(absl::string_view name, absl::string_view key,
                           const tensorflow::tstring& val) override;
  absl::Status WriteTensor(absl::string_view key, const tensorflow::Tensor& val) override;
  absl::Status WriteTensor(absl::string_view name, absl::string_view key,
                           const tensorflow::Tensor& val) override;

 private:
  // The entry for `name`, created on first use. Adds `key` to its metadata.
  absl::StatusOr<CapturedEntry*> AddKey(absl::string_view name, absl::string_view key);
  absl::Status WriteDataset(absl::string_view name, absl::string_view key,
                            const tensorflow::Tensor& val);

  CapturedState* out_;
  uint32_t type_name_id_;
  // Names are copied once into blocks that never move, so that the map can
  // key on views of them.
  std::vector<std::unique_ptr<char[]>> name_blocks_;
  size_t block_used_ = 0;
  size_t block_size_ = 0;
  StringIndex<CapturedEntry*> by_name_;
  absl::string_view last_name_;
  CapturedEntry* last_entry_ = nullptr;
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_STATE_STATE_WRITER_H_
