// The process-wide registry of incremental bases: per writer key (chosen by
// the caller, e.g. "<directory>/<basename>"), the latest checkpoint that
// writer committed and, for every tensor of it that a later save may
// reference, where its bytes are.
//
// Identity is exact, not a guess from addresses: a base holds a
// tensorflow::Tensor reference to the buffer of every tensor it records, from
// the capture of the save that wrote it until the next save of the same
// writer commits (or Release). While held, the buffer cannot be freed (so its
// address cannot be reused by another tensor) and TensorFlow never writes
// into it in place (forwarding a buffer to an op's output needs a reference
// count of one). A tensor of a later capture with the same buffer address,
// dtype and shape (the size follows from those) is therefore the very bytes
// already on disk.
//
// Cost: consumed elements stay alive until the next save of the same writer
// commits, because the base holds them; at most one base per key. Per held
// tensor the base keeps sizeof(HeldTensor) bytes (a Tensor handle, its
// address and its location: 72 bytes on x86-64) plus 4 to 8 bytes of hash
// table, about 80 bytes: 20 MiB for 262,144 held tensors (a 1 GiB buffer of
// 4 KiB elements).
// cc/tests/incremental_io_test.cc prints the figure.
#ifndef TFDATA_CHECKPOINT_CC_IO_INCREMENTAL_BASES_H_
#define TFDATA_CHECKPOINT_CC_IO_INCREMENTAL_BASES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cc/format/checkpoint_index.h"
#include "tensorflow/core/framework/tensor.h"

namespace tfdata_checkpoint {

// Only tensors of at least this many encoded bytes are referenced: below
// it, a tensor record's 20-odd extra index bytes and a separate small read
// cost more than writing the bytes again.
inline constexpr uint64_t kMinReferencedBytes = 512;
// The chain bound. A save is written in full instead when any of these
// holds (docs/FORMAT.md, "Incremental saves"):
// - the files it would reference plus its own new bytes exceed this many
//   times the bytes of the state it describes: no checkpoint keeps more than
//   twice its size alive on disk, however long the chain;
inline constexpr uint64_t kMaxSpaceAmplification = 2;
// - it would reference more than this many earlier checkpoints (streams):
//   bounds the files a restore opens and the index's stream list.
inline constexpr size_t kMaxReferencedStreams = 16;

// Where the bytes of one tensor of a base are.
struct TensorLocation {
  uint32_t stream = 0;  // Into IncrementalBase::streams().
  uint32_t shard = 0;   // Shard of that stream holding the first byte.
  uint64_t offset = 0;  // In that shard; continues into the stream's next shards.
  uint64_t length = 0;
  uint32_t crc32c = 0;
  TensorEncoding encoding = TensorEncoding::kRaw;
};

struct HeldTensor {
  tensorflow::Tensor tensor;  // The reference that makes the identity exact.
  // tensor.data(), kept so that a lookup compares addresses without reaching
  // every held tensor's buffer object (a cache miss each, out of line).
  const void* data = nullptr;
  TensorLocation location;
};

// One committed checkpoint as a base. Built once by the writer that
// committed it, then shared read-only (saves that started from it may still
// be using it when a newer base replaces it).
class IncrementalBase {
 public:
  IncrementalBase(std::string prefix, std::vector<StreamRecord> streams)
      : prefix_(std::move(prefix)), streams_(std::move(streams)) {}
  IncrementalBase(const IncrementalBase&) = delete;
  IncrementalBase& operator=(const IncrementalBase&) = delete;

  // Room for `n` tensors, so that building does not copy held tensors.
  void Reserve(size_t n);
  // Records `tensor` (holding a reference to it) at `location`, unless a
  // tensor with the same identity is already recorded: a buffer that occurs
  // twice in one capture is referenced by its first occurrence only.
  void Add(const tensorflow::Tensor& tensor, const TensorLocation& location);
  // Closes the base: the basenames of the shard files its tensors lie in.
  void Finish();

  // The position of the held tensor with `tensor`'s identity, or -1.
  int64_t Find(const tensorflow::Tensor& tensor) const;
  const HeldTensor& held(size_t i) const { return held_[i]; }
  size_t size() const { return held_.size(); }

  const std::string& prefix() const { return prefix_; }
  // Stream 0 is the checkpoint's own shards, the others those it references.
  const std::vector<StreamRecord>& streams() const { return streams_; }
  // Sorted basenames of the shard files that hold at least one byte of a
  // held tensor: what a save from this base may reference.
  const std::vector<std::string>& files() const { return files_; }
  // What the base keeps in memory besides the tensors' buffers.
  size_t MemoryBytes() const;

 private:
  static size_t Hash(const void* data, const tensorflow::Tensor& tensor);
  void Rehash(size_t capacity);
  // The slot holding the identity of `tensor` (whose data() is `data`), or
  // the empty slot where it goes.
  size_t Probe(const void* data, const tensorflow::Tensor& tensor) const;

  std::string prefix_;
  std::vector<StreamRecord> streams_;
  std::vector<HeldTensor> held_;
  // Open addressing: 0 is empty, i + 1 is held_[i]. (No absl::flat_hash_map:
  // see cc/state/string_index.h.)
  std::vector<uint32_t> slots_;
  std::vector<std::string> files_;
};

// Whether a tensor may be referenced, and its encoded size if so: raw and
// string-list tensors of at least kMinReferencedBytes (the encoded size of a
// string tensor counts its lengths and bytes). Variants and other protos
// are re-serialized by every save, so their bytes have no stable buffer.
bool ReferenceableBytes(const tensorflow::Tensor& tensor, uint64_t* encoded_bytes);

class IncrementalBases {
 public:
  static IncrementalBases* Global();

  struct Lookup {
    std::shared_ptr<const IncrementalBase> base;  // Null: none.
    uint64_t generation = 0;  // Hand back to Set.
  };
  // The base of `key`, shared: it stays valid while the caller holds it
  // even if a newer one replaces it.
  Lookup Get(const std::string& key);
  // Makes `base` the base of `key`, unless Release(key) was called after
  // the Get that returned `generation`: a save that was running when its
  // writer let go must not bring the base back.
  void Set(const std::string& key, std::shared_ptr<const IncrementalBase> base,
           uint64_t generation);
  // Drops the base of `key` (no error if there is none); its tensors are
  // released once no running save uses them.
  void Release(const std::string& key);

 private:
  IncrementalBases() = default;
  struct Slot {
    std::shared_ptr<const IncrementalBase> base;
    uint64_t generation = 0;
  };
  std::mutex mu_;
  std::map<std::string, Slot> slots_;
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_IO_INCREMENTAL_BASES_H_
