#include "cc/io/checkpoint_reader.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "cc/format/tensor_codec.h"
#include "cc/io/checkpoint_paths.h"
#include "cc/io/index_file.h"
#include "cc/io/range_reader.h"
#include "tensorflow/core/framework/tensor.h"

namespace tfdata_checkpoint {
namespace {

// Builds the restored state while the index is decoded: values and the
// piece layout, with no record per tensor kept. Metadata stays where it is in
// the index bytes until Finish copies it out.
class StateBuilder : public IndexVisitor {
 public:
  StateBuilder(RestoredState* state, ReadLayout* layout, absl::string_view index_bytes,
               const std::string& index_path)
      : state_(state), layout_(layout), index_bytes_(index_bytes), index_path_(index_path) {}

  absl::Status Begin(std::vector<std::string> type_names, uint64_t num_entries) override {
    state_->type_names = std::move(type_names);
    state_->type_name_ids.resize(num_entries);
    state_->first_value.resize(num_entries + 1);
    metadata_.resize(num_entries);
    // Room for as many tensors as the index can describe (a record takes at
    // least 30 bytes): vectors that grow by doubling would leave their old
    // buffers behind in the heap, and in the peak memory of the restore.
    // Pages never touched cost nothing.
    const size_t max_tensors = index_bytes_.size() / 30 + 1;
    layout_->pieces.Reserve(num_entries, max_tensors);
    layout_->crc.reserve(max_tensors);
    state_->value_ref.reserve(max_tensors);
    state_->tensors.reserve(max_tensors);
    state_->scalars.reserve(max_tensors);
    return absl::OkStatus();
  }

  absl::Status Entry(uint64_t e, uint32_t type_name_id, absl::string_view metadata,
                     uint32_t num_tensors) override {
    state_->type_name_ids[e] = type_name_id;
    metadata_[e] = metadata;
    state_->first_value[e] = state_->value_ref.size();
    layout_->pieces.AddEntry();
    return absl::OkStatus();
  }

  absl::Status Tensor(uint64_t e, const TensorRecord& record) override {
    if (state_->value_ref.size() >= RestoredState::kMaxValues) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "Checkpoint index ", index_path_, " has more tensors than a restore can hold"));
    }
    // Own tensors are pieces of the own stream; referenced ones are read
    // from the earlier checkpoint's shards they lie in.
    referenced_value_.push_back(record.stream > 0);
    if (record.stream > 0) {
      layout_->referenced.push_back({record.stream, record.shard, record.offset, record.length,
                                     record.crc32c, e, nullptr});
    } else {
      layout_->pieces.AddPiece(record.length);
      layout_->crc.push_back(record.crc32c);
    }
    // Int64 scalars are read into their slot and need no tensor.
    if (record.dtype == tensorflow::DT_INT64 && record.shape.empty() &&
        record.encoding == TensorEncoding::kRaw && record.length == sizeof(int64_t)) {
      state_->AddScalar(0);
      return absl::OkStatus();
    }
    tensorflow::Tensor tensor;
    if (absl::Status s = AllocateTensor(record, &tensor); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("Checkpoint index ", index_path_,
                                                 ", entry ", e, ": ", s.message()));
    }
    if (record.encoding != TensorEncoding::kRaw) {
      to_decode_.push_back({state_->value_ref.size(), e, record});
    }
    state_->AddTensor(std::move(tensor));
    return absl::OkStatus();
  }

  // Once every value exists (addresses are stable from then on).
  void SetDestinations(std::deque<std::string>* side_buffers) {
    const size_t n = state_->value_ref.size();
    state_->first_value.back() = n;
    layout_->pieces.Finish();
    layout_->destination.resize(layout_->pieces.num_pieces());
    size_t next_decode = 0;
    size_t own = 0;
    size_t referenced = 0;
    for (size_t v = 0; v < n; ++v) {
      char* destination;
      if (state_->is_scalar(v)) {
        destination = reinterpret_cast<char*>(
            &state_->scalars[state_->value_ref[v] & ~RestoredState::kScalarBit]);
      } else if (next_decode < to_decode_.size() && to_decode_[next_decode].value == v) {
        side_buffers->emplace_back(to_decode_[next_decode++].record.length, '\0');
        destination = side_buffers->back().data();
      } else {
        destination = RawBuffer(state_->mutable_tensor(v));
      }
      if (referenced_value_[v]) {
        layout_->referenced[referenced++].destination = destination;
      } else {
        layout_->destination[own++] = destination;
      }
    }
  }

  // Copies the metadata out of the index bytes, which can then go.
  void CopyMetadata() {
    size_t total = 0;
    for (absl::string_view m : metadata_) total += m.size();
    state_->metadata_bytes.reserve(total);
    state_->metadata_end.reserve(metadata_.size());
    for (absl::string_view m : metadata_) {
      state_->metadata_bytes.append(m.data(), m.size());
      state_->metadata_end.push_back(state_->metadata_bytes.size());
    }
    std::vector<absl::string_view>().swap(metadata_);
  }

  struct ToDecode {
    size_t value;
    uint64_t entry;
    TensorRecord record;
  };
  const std::vector<ToDecode>& to_decode() const { return to_decode_; }

 private:
  RestoredState* state_;
  ReadLayout* layout_;
  absl::string_view index_bytes_;
  const std::string& index_path_;
  std::vector<absl::string_view> metadata_;  // Into index_bytes_.
  std::vector<ToDecode> to_decode_;
  std::vector<bool> referenced_value_;  // Per value: in a referenced stream.
};

}  // namespace

absl::Status ReadCheckpointState(const std::string& prefix, RestoredState* state,
                                 const IndexCheck& check_index) {
  std::string index_bytes;
  if (absl::Status s = ReadIndexBytes(prefix, &index_bytes); !s.ok()) return s;
  const std::string index_path = IndexPath(prefix);
  // Raw tensors are allocated while the index is decoded and read into
  // directly, int64 scalars into their slot; the others are read into side
  // buffers and decoded once their checksums hold.
  CheckpointIndex index;
  std::deque<std::string> side_buffers;  // Stable addresses as it grows.
  std::vector<StateBuilder::ToDecode> to_decode;
  {
    ReadLayout layout;
    StateBuilder builder(state, &layout, index_bytes, index_path);
    if (absl::Status s = DecodeIndexWith(index_bytes, index_path, &index, &builder);
        !s.ok()) {
      return s;
    }
    if (check_index) {
      if (absl::Status s = check_index(index); !s.ok()) return s;
    }
    builder.SetDestinations(&side_buffers);
    if (absl::Status s = ReadShards(prefix, index, layout); !s.ok()) return s;
    builder.CopyMetadata();
    to_decode = builder.to_decode();
  }
  // Neither the index bytes nor the layout are needed while the iterator is
  // rebuilt next to the tensors.
  std::string().swap(index_bytes);
  for (size_t i = 0; i < to_decode.size(); ++i) {
    const StateBuilder::ToDecode& d = to_decode[i];
    absl::Status s =
        DecodeTensor(d.record, side_buffers[i], state->mutable_tensor(d.value));
    if (!s.ok()) {
      return absl::Status(s.code(), absl::StrCat("Checkpoint ", prefix, ", entry ", d.entry,
                                                 ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ReadCheckpoint(
    const std::string& prefix,
    std::vector<std::unique_ptr<tensorflow::VariantTensorData>>* entries) {
  RestoredState state;
  if (absl::Status s = ReadCheckpointState(prefix, &state); !s.ok()) return s;
  entries->clear();
  entries->reserve(state.num_entries());
  for (size_t e = 0; e < state.num_entries(); ++e) {
    auto data = std::make_unique<tensorflow::VariantTensorData>();
    state.EntryData(e, data.get());
    entries->push_back(std::move(data));
  }
  return absl::OkStatus();
}

absl::Status VerifyCheckpoint(const std::string& prefix, CheckpointIndex* index) {
  if (absl::Status s = ReadIndexFile(prefix, index); !s.ok()) return s;
  return ReadShards(prefix, *index, VerificationLayout(*index));
}

}  // namespace tfdata_checkpoint
