// Little-endian encoding of fixed-width integers and length-prefixed strings,
// with a bounds-checked reader so that a hostile index can never read past its
// buffer.
#ifndef TFDATA_CHECKPOINT_CC_FORMAT_BYTE_CODEC_H_
#define TFDATA_CHECKPOINT_CC_FORMAT_BYTE_CODEC_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/string_view.h"

namespace tfdata_checkpoint {

// The low `width` bytes of `v` at `dst`, least significant first: the byte
// order of every integer in the index and in string-list tensors.
inline void StoreLittleEndian(uint64_t v, int width, char* dst) {
  for (int i = 0; i < width; ++i) dst[i] = static_cast<char>(v >> (8 * i));
}

// The `width`-byte little-endian integer at `src`.
inline uint64_t LoadLittleEndian(const char* src, int width) {
  uint64_t x = 0;
  for (int i = 0; i < width; ++i) {
    x |= static_cast<uint64_t>(static_cast<uint8_t>(src[i])) << (8 * i);
  }
  return x;
}

class ByteWriter {
 public:
  explicit ByteWriter(std::string* out) : out_(out) {}

  void U8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void U32(uint32_t v) { PutLittleEndian(v, 4); }
  void U64(uint64_t v) { PutLittleEndian(v, 8); }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Bytes(absl::string_view s) {
    U32(static_cast<uint32_t>(s.size()));
    out_->append(s.data(), s.size());
  }
  void Raw(absl::string_view s) { out_->append(s.data(), s.size()); }

 private:
  void PutLittleEndian(uint64_t v, int width) {
    char buf[8];
    StoreLittleEndian(v, width, buf);
    out_->append(buf, width);
  }
  std::string* out_;
};

// Every getter returns false (and leaves the reader failed) instead of
// reading past the end; callers check `ok()` once per record.
class ByteReader {
 public:
  explicit ByteReader(absl::string_view data) : data_(data) {}

  bool U8(uint8_t* v) {
    uint64_t x;
    if (!GetLittleEndian(1, &x)) return false;
    *v = static_cast<uint8_t>(x);
    return true;
  }
  bool U32(uint32_t* v) {
    uint64_t x;
    if (!GetLittleEndian(4, &x)) return false;
    *v = static_cast<uint32_t>(x);
    return true;
  }
  bool U64(uint64_t* v) { return GetLittleEndian(8, v); }
  bool I64(int64_t* v) {
    uint64_t x;
    if (!GetLittleEndian(8, &x)) return false;
    *v = static_cast<int64_t>(x);
    return true;
  }
  bool Bytes(std::string* s) {
    uint32_t n;
    if (!U32(&n)) return false;
    if (n > data_.size() - pos_) return Fail();
    s->assign(data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  // Like Bytes, as a view into the reader's data.
  bool BytesView(absl::string_view* s) {
    uint32_t n;
    if (!U32(&n)) return false;
    if (n > data_.size() - pos_) return Fail();
    *s = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  bool Skip(size_t n) {
    if (!ok_ || n > data_.size() - pos_) return Fail();
    pos_ += n;
    return true;
  }
  size_t remaining() const { return data_.size() - pos_; }
  size_t position() const { return pos_; }
  bool ok() const { return ok_; }

 private:
  bool GetLittleEndian(int width, uint64_t* v) {
    if (!ok_ || static_cast<size_t>(width) > data_.size() - pos_) return Fail();
    *v = LoadLittleEndian(data_.data() + pos_, width);
    pos_ += width;
    return true;
  }
  bool Fail() {
    ok_ = false;
    return false;
  }

  absl::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace tfdata_checkpoint

#endif  // TFDATA_CHECKPOINT_CC_FORMAT_BYTE_CODEC_H_
