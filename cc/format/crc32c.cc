#include "cc/format/crc32c.h"

#include <cstring>

#include "absl/crc/crc32c.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace tfdata_checkpoint {
namespace {

#if defined(__x86_64__)

// With kCopy, also copies the bytes to `d`, in the same pass: a buffer of
// many small elements is gathered into staging buffers, and reading every
// byte twice (once to copy, once to checksum) showed in profiles.
template <bool kCopy>
__attribute__((target("sse4.2"))) uint32_t HardwareStream(uint32_t state, const char* p,
                                                           char* d, size_t n) {
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    if constexpr (kCopy) {
      std::memcpy(d, &word, 8);
      d += 8;
    }
    state = static_cast<uint32_t>(_mm_crc32_u64(state, word));
    p += 8;
    n -= 8;
  }
  while (n > 0) {
    if constexpr (kCopy) *d++ = *p;
    state = _mm_crc32_u8(state, static_cast<uint8_t>(*p));
    ++p;
    --n;
  }
  return state;
}

// The crc32 instruction has a latency of three cycles and a throughput of
// one, so three independent streams run about three times as fast as one;
// joining them costs two Concat calls, which pays from a few KiB on (4 KiB
// elements are a common case).
template <bool kCopy>
__attribute__((target("sse4.2"))) uint32_t HardwareExtend(uint32_t crc, const char* p,
                                                           char* d, size_t n) {
  constexpr size_t kMinInterleaved = 2048;
  if (n < kMinInterleaved) return ~HardwareStream<kCopy>(~crc, p, d, n);
  const size_t part = (n / 3) & ~size_t{7};
  const char* p1 = p + part;
  const char* p2 = p + 2 * part;
  uint32_t s0 = ~crc, s1 = ~0u, s2 = ~0u;
  for (size_t i = 0; i < part; i += 8) {
    uint64_t w0, w1, w2;
    std::memcpy(&w0, p + i, 8);
    std::memcpy(&w1, p1 + i, 8);
    std::memcpy(&w2, p2 + i, 8);
    if constexpr (kCopy) {
      std::memcpy(d + i, &w0, 8);
      std::memcpy(d + part + i, &w1, 8);
      std::memcpy(d + 2 * part + i, &w2, 8);
    }
    s0 = static_cast<uint32_t>(_mm_crc32_u64(s0, w0));
    s1 = static_cast<uint32_t>(_mm_crc32_u64(s1, w1));
    s2 = static_cast<uint32_t>(_mm_crc32_u64(s2, w2));
  }
  const size_t rest = n - 3 * part;
  s2 = HardwareStream<kCopy>(s2, p2 + part, kCopy ? d + 3 * part : nullptr, rest);
  uint32_t crc01 = Crc32cConcat(~s0, ~s1, part);
  return Crc32cConcat(crc01, ~s2, part + rest);
}

bool DetectHardware() { return __builtin_cpu_supports("sse4.2"); }

#else

template <bool kCopy>
uint32_t HardwareExtend(uint32_t crc, const char* p, char* d, size_t n) {
  return 0;
}
bool DetectHardware() { return false; }

#endif

const bool kHardware = DetectHardware();

}  // namespace

uint32_t Crc32cExtend(uint32_t crc, absl::string_view data) {
  if (kHardware) return HardwareExtend<false>(crc, data.data(), nullptr, data.size());
  return static_cast<uint32_t>(absl::ExtendCrc32c(absl::crc32c_t{crc}, data));
}

uint32_t Crc32cConcat(uint32_t crc_a, uint32_t crc_b, uint64_t length_b) {
  return static_cast<uint32_t>(
      absl::ConcatCrc32c(absl::crc32c_t{crc_a}, absl::crc32c_t{crc_b}, length_b));
}

uint32_t Crc32cCopy(char* dst, absl::string_view src, uint32_t crc) {
  if (kHardware) return HardwareExtend<true>(crc, src.data(), dst, src.size());
  std::memcpy(dst, src.data(), src.size());
  return Crc32cExtend(crc, absl::string_view(dst, src.size()));
}

bool Crc32cIsAccelerated() { return kHardware; }

}  // namespace tfdata_checkpoint
