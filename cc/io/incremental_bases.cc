#include "cc/io/incremental_bases.h"

#include <algorithm>
#include <cstddef>
#include <functional>
#include <utility>

#include "cc/format/tensor_codec.h"
#include "tensorflow/core/platform/tstring.h"

namespace tfdata_checkpoint {

using tensorflow::Tensor;

bool ReferenceableBytes(const Tensor& tensor, uint64_t* encoded_bytes) {
  // From the dtype and shape first: most tensors of a state with many
  // entries are ruled out without touching their buffers.
  const TensorEncoding encoding = EncodingFor(tensor.dtype());
  const uint64_t num_elements = static_cast<uint64_t>(tensor.NumElements());
  if (encoding == TensorEncoding::kRaw) {
    *encoded_bytes = num_elements * tensorflow::DataTypeSize(tensor.dtype());
  } else if (encoding == TensorEncoding::kStringList) {
    if (num_elements == 0 || tensor.data() == nullptr) return false;
    // As EncodeTensor lays it out: the lengths, then the bytes.
    const auto strings = tensor.flat<tensorflow::tstring>();
    uint64_t bytes = 8 * static_cast<uint64_t>(strings.size());
    for (int64_t i = 0; i < strings.size(); ++i) bytes += strings(i).size();
    *encoded_bytes = bytes;
  } else {
    return false;
  }
  return *encoded_bytes >= kMinReferencedBytes && tensor.data() != nullptr;
}

size_t IncrementalBase::Hash(const void* data, const Tensor& tensor) {
  // splitmix64 over the address, dtype and dimensions.
  auto mix = [](uint64_t h, uint64_t v) {
    h ^= v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    return h;
  };
  uint64_t h = mix(0, reinterpret_cast<uintptr_t>(data));
  h = mix(h, static_cast<uint64_t>(tensor.dtype()));
  for (int d = 0; d < tensor.dims(); ++d) h = mix(h, static_cast<uint64_t>(tensor.dim_size(d)));
  return static_cast<size_t>(h);
}

size_t IncrementalBase::Probe(const void* data, const Tensor& tensor) const {
  const size_t mask = slots_.size() - 1;
  for (size_t i = Hash(data, tensor) & mask;; i = (i + 1) & mask) {
    const uint32_t slot = slots_[i];
    if (slot == 0) return i;
    // The address is exact only because the base holds the held tensor's
    // buffer: see the header. dtype and shape fix the size.
    const HeldTensor& held = held_[slot - 1];
    if (held.data == data && held.tensor.dtype() == tensor.dtype() &&
        held.tensor.shape() == tensor.shape()) {
      return i;
    }
  }
}

void IncrementalBase::Rehash(size_t capacity) {
  slots_.assign(capacity, 0);
  for (size_t h = 0; h < held_.size(); ++h) {
    slots_[Probe(held_[h].data, held_[h].tensor)] = static_cast<uint32_t>(h + 1);
  }
}

void IncrementalBase::Reserve(size_t n) {
  held_.reserve(n);
  size_t capacity = 16;
  while (capacity < 2 * n) capacity *= 2;
  if (capacity > slots_.size()) Rehash(capacity);
}

void IncrementalBase::Add(const Tensor& tensor, const TensorLocation& location) {
  if (2 * (held_.size() + 1) > slots_.size()) {
    Rehash(std::max<size_t>(16, 2 * slots_.size()));
  }
  const void* data = tensor.data();
  const size_t i = Probe(data, tensor);
  if (slots_[i] != 0) return;
  held_.push_back({tensor, data, location});
  slots_[i] = static_cast<uint32_t>(held_.size());
}

int64_t IncrementalBase::Find(const Tensor& tensor) const {
  const void* data = tensor.data();
  if (slots_.empty() || data == nullptr) return -1;
  const uint32_t slot = slots_[Probe(data, tensor)];
  return slot == 0 ? -1 : static_cast<int64_t>(slot) - 1;
}

void IncrementalBase::Finish() {
  std::vector<std::vector<uint64_t>> starts;
  for (const StreamRecord& stream : streams_) starts.push_back(ShardStarts(stream.shards));
  std::vector<ReferencedShard> covered;
  for (const HeldTensor& h : held_) {
    const TensorLocation& l = h.location;
    AppendCoveredShards(l.stream, starts[l.stream], l.shard, l.offset, l.length, &covered);
    // Most tensors lie in the shard of the one before: keep the list short.
    if (covered.size() > 4096) {
      std::sort(covered.begin(), covered.end());
      covered.erase(std::unique(covered.begin(), covered.end()), covered.end());
    }
  }
  std::sort(covered.begin(), covered.end());
  covered.erase(std::unique(covered.begin(), covered.end()), covered.end());
  files_.clear();
  for (const ReferencedShard& r : covered) {
    files_.push_back(streams_[r.stream].shards[r.shard].name);
  }
  std::sort(files_.begin(), files_.end());
  // No shrink_to_fit: Tensor's move is not noexcept, so it would copy (and
  // reference-count) every held tensor; Reserve's bound is close.
}

size_t IncrementalBase::MemoryBytes() const {
  size_t bytes = sizeof(*this) + held_.capacity() * sizeof(HeldTensor) +
                 slots_.capacity() * sizeof(uint32_t);
  for (const std::string& file : files_) bytes += sizeof(file) + file.capacity();
  for (const StreamRecord& stream : streams_) {
    for (const ShardRecord& shard : stream.shards) bytes += sizeof(shard) + shard.name.capacity();
  }
  return bytes;
}

IncrementalBases* IncrementalBases::Global() {
  // Leaked on purpose: destroying held tensors at exit would race with TF's
  // own static destruction.
  static IncrementalBases* bases = new IncrementalBases();
  return bases;
}

IncrementalBases::Lookup IncrementalBases::Get(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = slots_.find(key);
  if (it == slots_.end()) return {};
  return {it->second.base, it->second.generation};
}

void IncrementalBases::Set(const std::string& key, std::shared_ptr<const IncrementalBase> base,
                           uint64_t generation) {
  std::shared_ptr<const IncrementalBase> replaced;  // Released outside the lock.
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slots_[key];
  if (slot.generation != generation) return;
  replaced = std::move(slot.base);
  slot.base = std::move(base);
}

void IncrementalBases::Release(const std::string& key) {
  std::shared_ptr<const IncrementalBase> released;  // Released outside the lock.
  std::lock_guard<std::mutex> lock(mu_);
  Slot& slot = slots_[key];
  released = std::move(slot.base);
  ++slot.generation;
}

}  // namespace tfdata_checkpoint
