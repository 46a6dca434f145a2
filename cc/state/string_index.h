// A small open-addressing hash table from string views to values, for the
// many-entry lookups of StateWriter and StateReader.
//
// Why not absl::flat_hash_map: its out-of-line parts live in TF's prebuilt
// libtensorflow_framework, and under AddressSanitizer absl changes the
// table's layout in the inline parts only (generation counters), so a
// sanitized build of ours crashes inside TF's copy. This table is all inline.
#ifndef TFDATA_CHECKPOINT_CC_STATE_STRING_INDEX_H_
#define TFDATA_CHECKPOINT_CC_STATE_STRING_INDEX_H_

#include <cstddef>
#include <functional>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"

namespace tfdata_checkpoint {

// Keys are views: the caller keeps the bytes alive and unchanged.
template <typename V>
class StringIndex {
 public:
  void Reserve(size_t n) {
    size_t capacity = 16;
    while (capacity < 2 * n) capacity *= 2;
    if (capacity > slots_.size()) Rehash(capacity);
  }

  // Sets `key` to `value`, replacing an earlier value.
  void Set(absl::string_view key, V value) {
    if (2 * (size_ + 1) > slots_.size()) Rehash(slots_.empty() ? 16 : 2 * slots_.size());
    Slot& slot = Probe(key);
    if (!slot.used) {
      slot.used = true;
      slot.key = key;
      ++size_;
    }
    slot.value = std::move(value);
  }

  // The value for `key`, or nullptr.
  const V* Find(absl::string_view key) const {
    if (slots_.empty()) return nullptr;
    const Slot& slot = const_cast<StringIndex*>(this)->Probe(key);
    return slot.used ? &slot.value : nullptr;
  }

  // Like Find, and also gives the stored key (the view it was Set with).
  const V* Find(absl::string_view key, absl::string_view* stored_key) const {
    if (slots_.empty()) return nullptr;
    const Slot& slot = const_cast<StringIndex*>(this)->Probe(key);
    if (!slot.used) return nullptr;
    *stored_key = slot.key;
    return &slot.value;
  }

  size_t size() const { return size_; }

 private:
  struct Slot {
    absl::string_view key;
    V value{};
    bool used = false;
  };

  static size_t Hash(absl::string_view key) {
    return std::hash<std::string_view>()(std::string_view(key.data(), key.size()));
  }

  // The slot holding `key`, or the empty slot where it would go.
  Slot& Probe(absl::string_view key) {
    const size_t mask = slots_.size() - 1;
    for (size_t i = Hash(key) & mask;; i = (i + 1) & mask) {
      Slot& slot = slots_[i];
      if (!slot.used || slot.key == key) return slot;
    }
  }

  void Rehash(size_t capacity) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(capacity, Slot());
    size_ = 0;
    for (Slot& slot : old) {
      if (slot.used) Set(slot.key, std::move(slot.value));
    }
  }

  std::vector<Slot> slots_;
  size_t size_ = 0;
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_STATE_STRING_INDEX_H_
